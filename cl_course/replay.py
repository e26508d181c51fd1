"""Replay of stored samples: experience replay (ER), A-GEM and GEM, on a memory of a fixed total budget.

Two ways to fill it (`selection`):
- a class-balanced `Memory` (random or herding): at most `budget` samples in all, shared equally among the
  classes seen so far (a class is a label within its task: domain-IL's "0" of digits 0/1 and of 2/3 are two
  classes). It is filled when a task ends, and it needs that boundary: it can choose among a class's samples
  only once the class is complete, and re-divide the budget only once it knows how many classes there are.
- a `Reservoir` (Vitter's algorithm R, as Chaudhry et al. 2019 use it for ER): it sees every training batch of
  the stream and keeps a uniform sample of everything seen so far, with no task boundary, no labels and no
  quota. This protocol's stream passes over a task's data several times (2,000 batches of 128 over about
  12,000 images, about 21 passes), so a reservoir can hold one image twice.
"""
import itertools

import torch
import torch.nn.functional as F

from .config import MEMORY_SELECTIONS
from .icarl import herding_selection, quota
from .strategies import Replay, Strategy


class Stored:
    """What ER, A-GEM and GEM ask of a memory, from its stored x, y (labels), head and task (index) tensors."""
    x = y = head = task = None

    def __len__(self):
        return 0 if self.x is None else len(self.x)

    def sample(self, n):
        """min(n, len(memory)) stored samples without replacement: (x, y, head). The default budget (1,000)
        holds more than a batch of 128 from the first task on."""
        ### BEGIN SOLUTION
        idx = torch.randperm(len(self), generator=self.generator)[:n].to(self.x.device)
        return self.x[idx], self.y[idx], self.head[idx]
        ### END SOLUTION

    def of_task(self, index):
        """Every stored sample of task `index`: (x, y, head)."""
        keep = self.task == index
        return self.x[keep], self.y[keep], self.head[keep]


class Memory(Stored):
    """A class-balanced memory of at most `budget` samples: x, label, head and task index of each.

    Every class keeps its samples in an order of preference. When a task ends the quota becomes
    m = budget // classes seen, each new class stores the first m of its order, and every old class keeps
    the first m of its own (Rebuffi et al.'s ReduceExemplarSet). That is why a selection rule returns an
    ordering: herding's first m are its best m for every m. The default order is a random permutation, so
    a class holds a uniformly random subset of its samples, and so does a class that shrank."""

    def __init__(self, budget=1000, seed=0):
        self.budget = budget
        self.generator = torch.Generator().manual_seed(seed)
        self.classes = {}  # (task index, label) -> (its stored inputs in order of preference, its task's head)

    def random_order(self, x, m):
        """The first m of a random permutation of x's samples."""
        return torch.randperm(len(x), generator=self.generator)[:m].to(x.device)

    def add(self, task, index, rank=None):
        """Store the finished task `task`, numbered `index`. rank(x, m): the indices of the first m of the
        class's samples x in order of preference (default: random_order)."""
        rank = rank or self.random_order
        labels = task.y_train.unique().tolist()
        m = quota(self.budget, len(self.classes) + len(labels))
        ### BEGIN SOLUTION
        for c in labels:
            of_class = task.x_train[task.y_train == c]
            self.classes[(index, c)] = of_class[rank(of_class, m)], task.head
        self.classes = {key: (x[:m], head) for key, (x, head) in self.classes.items()}
        ### END SOLUTION
        self.stack()

    def stack(self):
        """Every class's stored samples as one tensor each of x, label, head and task index. The classes' entries
        become views of it: the samples are kept once, and what a shrunk class dropped is freed (a slice x[:m] of
        the class's earlier tensor would keep all of that alive)."""
        parts = [(x, *(torch.full((len(x),), v, dtype=torch.long, device=x.device) for v in (c, head, index)))
                 for (index, c), (x, head) in self.classes.items()]
        self.x, self.y, self.head, self.task = (torch.cat(p) for p in zip(*parts, strict=True))
        start = 0
        for key, (x, head) in self.classes.items():
            self.classes[key] = self.x[start:start + len(x)], head
            start += len(x)


def reservoir_slots(seen, n, budget, generator=None):
    """Vitter's algorithm R for the next n items of a stream after `seen` items: a LongTensor [n], the memory
    slot each item is written to, or -1 where it is dropped. Item i (from 0) is the stream's item s = seen + i.
    While s < budget it goes to slot s; afterwards j is drawn uniformly from 0..s (s + 1 values, so the item is
    kept with probability budget / (s + 1)) and the item replaces slot j when j < budget. Every item seen so far
    is then in the memory with the same probability, budget / (items seen). Items of one call may share a slot:
    the later one overwrites the earlier, as a loop over the items would.
    (Chaudhry et al.'s ER code draws j from 0..s-1, an off-by-one: item s is then kept with probability
    budget / s, and the first one after the memory fills always.)"""
    ### BEGIN SOLUTION
    s = seen + torch.arange(n)
    j = (torch.rand(n, generator=generator, dtype=torch.float64) * (s + 1)).long()  # float64: uniform up to 2^53
    return torch.where(s < budget, s, torch.where(j < budget, j, -1))
    ### END SOLUTION


def last_writes(slots, budget):
    """The items (indices into `slots`) that are the last written to their slot: a loop's writes in one go.
    index_put with repeated indices leaves which write wins undefined (on a GPU), so repeats are resolved here."""
    items = (slots >= 0).nonzero().squeeze(1)
    last = torch.full((budget,), -1, dtype=torch.long, device=slots.device)
    last.scatter_reduce_(0, slots[items], items, "amax")  # the latest item of each slot
    return items[last[slots[items]] == items]


class Reservoir(Stored):
    """A memory filled by reservoir sampling over the stream of training batches: after s samples of the
    stream, every one of them is stored with probability budget / s. It needs no task boundary: it looks at
    no label and no task, and has no quota to re-divide. The stream may repeat a sample (this protocol's
    passes over a task's data several times), and then the memory can hold it twice."""

    def __init__(self, budget=1000, seed=0, slots=None):
        self.budget, self.seen = budget, 0
        self.generator = torch.Generator().manual_seed(seed)
        self.slots = slots  # the notebook's reservoir_slots can stand in for the library's
        self.rows = None  # x, y, head and task of `budget` slots, the first min(seen, budget) filled

    def observe(self, x, y, head, index):
        """The stream's next batch: inputs x, labels y, of the task numbered `index`, whose output head is `head`."""
        slots = (self.slots or reservoir_slots)(self.seen, len(x), self.budget, self.generator).to(x.device)
        self.seen += len(x)
        if self.rows is None:
            self.rows = (x.new_zeros((self.budget, *x.shape[1:])),
                         *(torch.zeros(self.budget, dtype=torch.long, device=x.device) for _ in range(3)))
        items = last_writes(slots, self.budget)
        for rows, values in zip(self.rows, (x, y, torch.full_like(y, head), torch.full_like(y, index)), strict=True):
            rows[slots[items]] = values[items]
        self.x, self.y, self.head, self.task = (rows[:min(self.seen, self.budget)] for rows in self.rows)


class Remembering(Strategy):
    """A strategy with a memory of `budget` samples in all, filled by `selection`: "random" or "herding" (a
    class-balanced Memory, filled when a task ends; herding ranks a class by icarl.herding_selection on the
    model's features at the task's end) or "reservoir" (a Reservoir that sees every training batch; `slots`:
    a function that stands in for reservoir_slots)."""

    def __init__(self, budget=1000, seed=0, selection="random", slots=None):
        super().__init__()
        if selection not in MEMORY_SELECTIONS:
            raise ValueError(f"unknown memory selection {selection!r}; choose {', '.join(MEMORY_SELECTIONS)}")
        self.selection = selection
        self.memory = Reservoir(budget, seed, slots) if selection == "reservoir" else Memory(budget, seed)
        self.batch = None  # the reservoir's next write: the current batch

    def loss(self, model, x, y, logits, tasks):
        if self.selection == "reservoir":
            self.batch = x, y  # written after the step, so that a batch is never replayed beside itself
        return super().loss(model, x, y, logits, tasks)

    def after_step(self, model, tasks):
        if self.batch is not None:
            self.memory.observe(*self.batch, tasks[-1].head, len(tasks) - 1)
            self.batch = None

    @torch.no_grad()
    def after_task(self, model, tasks):
        if self.selection == "reservoir":
            return
        rank = (lambda x, m: herding_selection(model.features(x), m)) if self.selection == "herding" else None
        self.memory.add(tasks[-1], len(tasks) - 1, rank)

    def remembers(self, tasks):
        """Whether an earlier task is there to use. A reservoir fills during task 1 as well, but replaying
        the task being learned would only cost time there (its weight 1 - 1/t is 0 while t = 1)."""
        return len(tasks) > 1 and len(self.memory) > 0

    def sample(self, n):
        return self.memory.sample(n)


class ExperienceReplay(Remembering):
    """Experience replay: every batch is trained beside an equally large batch drawn from the memory (all of
    the memory while it holds fewer)."""

    def replay(self, model, x, tasks):
        if not self.remembers(tasks):
            return None
        return Replay(*self.sample(len(x)))


def flat_gradient(model):
    return torch.cat([(torch.zeros_like(p) if p.grad is None else p.grad).flatten() for p in model.parameters()])


def set_flat_gradient(model, flat):
    start = 0
    for p in model.parameters():
        p.grad = flat[start:start + p.numel()].view_as(p).clone()
        start += p.numel()


def memory_gradient(model, x, y, head):
    """d CE(model(x), y) / d theta as one flat vector, leaving p.grad alone."""
    params = list(model.parameters())
    grads = torch.autograd.grad(F.cross_entropy(model(x, head), y), params, allow_unused=True)
    return torch.cat([(torch.zeros_like(p) if g is None else g).flatten() for p, g in zip(params, grads, strict=True)])


def agem_project(gradient, reference):
    """A-GEM (Chaudhry et al. 2019): if g . g_ref < 0, g - (g . g_ref / g_ref . g_ref) g_ref, else g.
    The projected gradient is the closest to g that does not increase the memory's loss to first order."""
    ### BEGIN SOLUTION
    dot = gradient @ reference
    # clamp instead of `if dot < 0`: no CPU-GPU sync point in every step
    return gradient - dot.clamp(max=0) / (reference @ reference).clamp(min=1e-12) * reference
    ### END SOLUTION


def gem_project(gradient, references):
    """GEM (Lopez-Paz & Ranzato 2017): the g~ closest to g with g~ . g_k >= 0 for every old task's
    gradient g_k (rows of `references`, [K, P]). The quadratic program's dual has K variables,
        min_v 1/2 v^T (G G^T) v + (G g)^T v,  v >= 0,   g~ = g + G^T v,
    and K <= 4 here (Split MNIST), so it is solved exactly: of the 2^K sets of active constraints, the
    one whose solution has v >= 0 and satisfies every constraint (the KKT conditions)."""
    ### BEGIN SOLUTION
    G = references
    if bool((G @ gradient >= 0).all()):  # a sync point, but GEM's K backward passes cost far more
        return gradient
    gram, b = G @ G.T, G @ gradient
    best = None
    for size in range(1, len(G) + 1):
        for active in itertools.combinations(range(len(G)), size):
            a = list(active)
            v = torch.linalg.lstsq(gram[a][:, a], -b[a, None]).solution.squeeze(1)
            if (v < -1e-10).any():
                continue
            projected = gradient + G[a].T @ v
            if (G @ projected >= -1e-6 * gradient.norm() * G.norm(dim=1)).all():
                change = (projected - gradient).norm()
                if best is None or change < best[0]:
                    best = (change, projected)
    return gradient if best is None else best[1]
    ### END SOLUTION


class AGEM(Remembering):
    """A-GEM: the memory is not trained on; a batch of it gives a reference gradient, and the batch's
    gradient is projected when it would raise the memory's loss."""
    reference_batch = 256  # Chaudhry et al. 2019's

    def adjust_gradients(self, model, tasks):
        if not self.remembers(tasks):
            return
        ### BEGIN SOLUTION
        reference = memory_gradient(model, *self.sample(self.reference_batch))
        set_flat_gradient(model, agem_project(flat_gradient(model), reference))
        ### END SOLUTION


class GEM(Remembering):
    """GEM: one reference gradient per earlier task, from all of its stored samples; the batch's gradient
    is projected onto the cone where none of the old tasks' losses rises."""

    def adjust_gradients(self, model, tasks):
        if not self.remembers(tasks):
            return
        ### BEGIN SOLUTION
        stored = [self.memory.of_task(k) for k in range(len(tasks) - 1)]
        references = [memory_gradient(model, *s) for s in stored if len(s[0])]  # a reservoir may hold none of one
        if references:
            set_flat_gradient(model, gem_project(flat_gradient(model), torch.stack(references)))
        ### END SOLUTION
