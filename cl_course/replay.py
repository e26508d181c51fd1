"""Replay of stored samples: experience replay (ER), A-GEM and GEM, on one class-balanced memory.

The memory keeps `per_class` random samples of every class of every finished task (a class is a
label within its task: domain-IL's "0" of digits 0/1 and of 2/3 are two classes). Choosing them
uniformly at random once the task is over gives what a per-class reservoir over the task's stream
would hold, in distribution, with one randperm per class instead of a loop over samples.
"""
import itertools

import torch
import torch.nn.functional as F

from .strategies import Replay, Strategy


def random_per_class(labels, per_class, generator=None):
    """Indices of at most `per_class` samples of every label, drawn uniformly without replacement; [K]."""
    ### BEGIN SOLUTION
    keep = []
    for c in labels.unique():
        where = (labels == c).nonzero().squeeze(1)
        keep.append(where[torch.randperm(len(where), generator=generator)[:per_class].to(where.device)])
    return torch.cat(keep)
    ### END SOLUTION


class Memory:
    """Stored samples of finished tasks: x, label and head (the task's output head) of each."""

    def __init__(self, per_class=100, seed=0):
        self.per_class = per_class
        self.generator = torch.Generator().manual_seed(seed)
        self.x = self.y = self.head = self.task = None

    def __len__(self):
        return 0 if self.x is None else len(self.x)

    def add(self, task, index):
        """Keep `per_class` random training samples of each of the task's labels; `index` numbers the task."""
        ### BEGIN SOLUTION
        keep = random_per_class(task.y_train, self.per_class, self.generator)
        parts = (task.x_train[keep], task.y_train[keep], torch.full_like(keep, task.head), torch.full_like(keep, index))
        if not len(self):  # empty: the first finished task
            self.x, self.y, self.head, self.task = parts
        else:
            self.x, self.y, self.head, self.task = (torch.cat([a, b]) for a, b in
                                                    zip((self.x, self.y, self.head, self.task), parts, strict=True))
        ### END SOLUTION

    def sample(self, n):
        """min(n, len(memory)) stored samples without replacement: (x, y, head). The default budget (100 per
        class) holds 200 after the first task, more than a batch of 128."""
        ### BEGIN SOLUTION
        idx = torch.randperm(len(self), generator=self.generator)[:n].to(self.x.device)
        return self.x[idx], self.y[idx], self.head[idx]
        ### END SOLUTION

    def of_task(self, index):
        """Every stored sample of task `index`: (x, y, head)."""
        keep = self.task == index
        return self.x[keep], self.y[keep], self.head[keep]


class Remembering(Strategy):
    """A strategy that stores samples of every finished task in its memory."""

    def __init__(self, per_class=100, seed=0):
        super().__init__()
        self.memory = Memory(per_class, seed)

    def after_task(self, model, tasks):
        self.memory.add(tasks[-1], len(tasks) - 1)

    def sample(self, n):
        return self.memory.sample(n)


class ExperienceReplay(Remembering):
    """Experience replay: every batch is trained beside an equally large batch drawn from the memory (all of
    the memory while it holds fewer)."""

    def replay(self, model, x, tasks):
        if not len(self.memory):
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


class AGEM(Remembering):
    """A-GEM: the memory is not trained on; a batch of it gives a reference gradient, and the batch's
    gradient is projected when it would raise the memory's loss."""
    reference_batch = 256  # Chaudhry et al. 2019's

    def adjust_gradients(self, model, tasks):
        if not len(self.memory):
            return
        ### BEGIN SOLUTION
        reference = memory_gradient(model, *self.sample(self.reference_batch))
        set_flat_gradient(model, agem_project(flat_gradient(model), reference))
        ### END SOLUTION


class GEM(Remembering):
    """GEM: one reference gradient per earlier task, from all of its stored samples; the batch's gradient
    is projected onto the cone where none of the old tasks' losses rises."""

    def adjust_gradients(self, model, tasks):
        if not len(self.memory):
            return
        references = torch.stack([memory_gradient(model, *self.memory.of_task(k)) for k in range(len(tasks) - 1)])
        set_flat_gradient(model, gem_project(flat_gradient(model), references))
