"""Typical wrong answers to lesson 2's blanks, written out as code (blanks.py pairs each with
the message a student whose answer behaves like it reads). Like mistakes.py, every body is a solution
region: the student edition carries none of them. The strategy classes are written the way a student
would write them in the notebook: a buffer of tensors per class, not the library's Memory."""
import warnings

import torch
import torch.nn.functional as F

from ..replay import flat_gradient, memory_gradient, set_flat_gradient
from ..strategies import LwF, Replay, Strategy, frozen_copy, outputs_of_old_heads

# ---- the distillation term -------------------------------------------------------------------


def _soft_cross_entropy(targets, log_q):
    ### BEGIN SOLUTION
    return -(targets * log_q).sum(1).mean()
    ### END SOLUTION


def distillation_no_t_squared(logits, teacher_logits, temperature):
    ### BEGIN SOLUTION
    t = temperature
    return _soft_cross_entropy(F.softmax(teacher_logits / t, 1), F.log_softmax(logits / t, 1))
    ### END SOLUTION


def distillation_times_t(logits, teacher_logits, temperature):
    ### BEGIN SOLUTION
    t = temperature
    return _soft_cross_entropy(F.softmax(teacher_logits / t, 1), F.log_softmax(logits / t, 1)) * t
    ### END SOLUTION


def distillation_teacher_not_softened(logits, teacher_logits, temperature):
    ### BEGIN SOLUTION
    t = temperature
    return _soft_cross_entropy(F.softmax(teacher_logits, 1), F.log_softmax(logits / t, 1)) * t ** 2
    ### END SOLUTION


def distillation_student_not_softened(logits, teacher_logits, temperature):
    ### BEGIN SOLUTION
    t = temperature
    return _soft_cross_entropy(F.softmax(teacher_logits / t, 1), F.log_softmax(logits, 1)) * t ** 2
    ### END SOLUTION


def distillation_no_temperature(logits, teacher_logits, temperature):
    ### BEGIN SOLUTION
    return _soft_cross_entropy(F.softmax(teacher_logits, 1), F.log_softmax(logits, 1))
    ### END SOLUTION


def distillation_summed(logits, teacher_logits, temperature):
    ### BEGIN SOLUTION
    t = temperature
    return -(F.softmax(teacher_logits / t, 1) * F.log_softmax(logits / t, 1)).sum() * t ** 2
    ### END SOLUTION


def distillation_kl_mean(logits, teacher_logits, temperature):
    ### BEGIN SOLUTION
    t = temperature
    with warnings.catch_warnings():  # torch warns about reduction="mean" here; the student sees it, the tests need not
        warnings.simplefilter("ignore")
        return F.kl_div(F.log_softmax(logits / t, 1), F.softmax(teacher_logits / t, 1), reduction="mean") * t ** 2
    ### END SOLUTION


def distillation_hard_targets(logits, teacher_logits, temperature):
    ### BEGIN SOLUTION
    return F.cross_entropy(logits / temperature, teacher_logits.argmax(1)) * temperature ** 2
    ### END SOLUTION


def distillation_probabilities_not_log(logits, teacher_logits, temperature):
    ### BEGIN SOLUTION
    t = temperature
    return _soft_cross_entropy(F.softmax(teacher_logits / t, 1), F.softmax(logits / t, 1)) * t ** 2
    ### END SOLUTION


def distillation_roles_swapped(logits, teacher_logits, temperature):
    ### BEGIN SOLUTION
    t = temperature
    return _soft_cross_entropy(F.softmax(logits / t, 1), F.log_softmax(teacher_logits / t, 1)) * t ** 2
    ### END SOLUTION


# ---- LwF -------------------------------------------------------------------------------------


class LwFNoCopy(LwF):
    def after_task(self, model, tasks):
        ### BEGIN SOLUTION
        self.previous = model  # the model itself: it keeps training, so its "old" outputs are today's
        ### END SOLUTION


class _LwF(LwF):
    """A student's LwF: the copy kept right; `replay` is what the variants get wrong."""

    def after_task(self, model, tasks):
        ### BEGIN SOLUTION
        self.previous = frozen_copy(model)
        ### END SOLUTION


class LwFTeacherIsModel(_LwF):
    def replay(self, model, x, tasks):
        ### BEGIN SOLUTION
        if self.previous is None:
            return None
        xs, head, logits = outputs_of_old_heads(model, x, tasks)  # `model`, where self.previous was meant
        return Replay(xs, logits, head, temperature=self.temperature)
        ### END SOLUTION


class LwFFirstTeacherKept(LwF):
    def after_task(self, model, tasks):
        ### BEGIN SOLUTION
        if self.previous is None:  # the first task's model, for ever
            self.previous = frozen_copy(model)
        ### END SOLUTION


class LwFLatestHead(_LwF):
    def replay(self, model, x, tasks):
        ### BEGIN SOLUTION
        if self.previous is None:
            return None
        return Replay(x, self.previous(x, tasks[-2].head), tasks[-2].head, self.temperature)
        ### END SOLUTION


class LwFCurrentHeadOnly(_LwF):
    def replay(self, model, x, tasks):
        ### BEGIN SOLUTION
        if self.previous is None:
            return None
        return Replay(x, self.previous(x, tasks[-1].head), tasks[-1].head, self.temperature)
        ### END SOLUTION


class LwFCurrentHeadToo(_LwF):
    def replay(self, model, x, tasks):
        ### BEGIN SOLUTION
        if self.previous is None:
            return None
        xs, head, logits = outputs_of_old_heads(self.previous, x, tasks + [tasks[-1]])
        return Replay(xs, logits, head, temperature=self.temperature)
        ### END SOLUTION


class LwFNoHead(_LwF):
    def replay(self, model, x, tasks):
        ### BEGIN SOLUTION
        if self.previous is None:
            return None
        xs, head, logits = outputs_of_old_heads(self.previous, x, tasks)
        return Replay(xs, logits, temperature=self.temperature)  # every row through head 0
        ### END SOLUTION


class LwFNoTemperature(_LwF):
    def replay(self, model, x, tasks):
        ### BEGIN SOLUTION
        if self.previous is None:
            return None
        xs, head, logits = outputs_of_old_heads(self.previous, x, tasks)
        return Replay(xs, logits, head)
        ### END SOLUTION


class LwFTemperatureTwo(_LwF):
    def replay(self, model, x, tasks):
        ### BEGIN SOLUTION
        if self.previous is None:
            return None
        xs, head, logits = outputs_of_old_heads(self.previous, x, tasks)
        return Replay(xs, logits, head, 2.0)  # the training default, not this strategy's own
        ### END SOLUTION


class LwFProbabilities(_LwF):
    def replay(self, model, x, tasks):
        ### BEGIN SOLUTION
        if self.previous is None:
            return None
        xs, head, logits = outputs_of_old_heads(self.previous, x, tasks)
        return Replay(xs, F.softmax(logits / self.temperature, 1), head, self.temperature)
        ### END SOLUTION


class LwFHardLabels(_LwF):
    def replay(self, model, x, tasks):
        ### BEGIN SOLUTION
        if self.previous is None:
            return None
        xs, head, logits = outputs_of_old_heads(self.previous, x, tasks)
        return Replay(xs, logits.argmax(1), head, self.temperature)
        ### END SOLUTION


class LwFCopyAtTaskStart(LwF):
    """Not in the table of typical mistakes: its replay fails during the first task, and the exercise says
    why (tests/test_replay_checks.py)."""

    def before_task(self, model, tasks):
        ### BEGIN SOLUTION
        self.previous = frozen_copy(model)
        ### END SOLUTION

    def after_task(self, model, tasks):
        ### BEGIN SOLUTION
        pass
        ### END SOLUTION


# ---- experience replay -----------------------------------------------------------------------


class Buffer(Strategy):
    """A student's experience replay with a fixed budget: each label of every finished task is a class, kept
    in a random order; every class keeps the first budget // classes seen of its samples."""

    def __init__(self, budget=1000):
        super().__init__()
        self.budget = budget
        self.stored = []  # per class: (x, y, head) in the order kept

    def keep(self, task):
        """[indices of one label of `task`, in the order kept], one per label."""
        ### BEGIN SOLUTION
        groups = [torch.nonzero(task.y_train == c).flatten() for c in task.y_train.unique()]
        return [i[torch.randperm(len(i))] for i in groups]
        ### END SOLUTION

    def share(self):
        ### BEGIN SOLUTION
        return self.budget // len(self.stored)
        ### END SOLUTION

    def store(self, task):
        ### BEGIN SOLUTION
        for i in self.keep(task):
            self.stored.append((task.x_train[i], task.y_train[i], torch.full((len(i),), task.head)))
        m = self.share()
        self.stored = [(x[:m], y[:m], h[:m]) for x, y, h in self.stored]
        ### END SOLUTION

    def after_task(self, model, tasks):
        ### BEGIN SOLUTION
        self.store(tasks[-1])
        ### END SOLUTION

    def memory(self):
        ### BEGIN SOLUTION
        return tuple(torch.cat([part[k] for part in self.stored]) for k in range(3))
        ### END SOLUTION

    def sample(self, n):
        ### BEGIN SOLUTION
        x, y, head = self.memory()
        i = torch.randperm(len(x))[:n]
        return x[i], y[i], head[i]
        ### END SOLUTION

    def replay(self, model, x, tasks):
        ### BEGIN SOLUTION
        return Replay(*self.sample(len(x))) if self.stored else None
        ### END SOLUTION


class BufferLatestOnly(Buffer):
    def after_task(self, model, tasks):
        ### BEGIN SOLUTION
        self.stored = []  # each task replaces the one before
        self.store(tasks[-1])
        ### END SOLUTION


class BufferFirstTaskAgain(Buffer):
    def after_task(self, model, tasks):
        ### BEGIN SOLUTION
        self.store(tasks[0])
        ### END SOLUTION


class BufferAtTaskStart(Buffer):
    def before_task(self, model, tasks):
        ### BEGIN SOLUTION
        self.store(tasks[-1])
        ### END SOLUTION

    def after_task(self, model, tasks):
        ### BEGIN SOLUTION
        pass
        ### END SOLUTION


class BufferFirstOfStream(Buffer):
    """The budget shared among tasks, each keeping the first samples of its stream."""

    def store(self, task):
        ### BEGIN SOLUTION
        i = torch.arange(len(task.y_train))  # the stream's order
        self.stored.append((task.x_train[i], task.y_train[i], torch.full((len(i),), task.head)))
        m = self.budget // len(self.stored)
        self.stored = [(x[:m], y[:m], h[:m]) for x, y, h in self.stored]
        ### END SOLUTION


class BufferPerTask(Buffer):
    """The budget shared among tasks, not classes: each task keeps budget // tasks seen of its samples."""

    def store(self, task):
        ### BEGIN SOLUTION
        i = torch.randperm(len(task.y_train))
        self.stored.append((task.x_train[i], task.y_train[i], torch.full((len(i),), task.head)))
        m = self.budget // len(self.stored)
        self.stored = [(x[:m], y[:m], h[:m]) for x, y, h in self.stored]
        ### END SOLUTION


class BufferNotShrunk(Buffer):
    def store(self, task):
        ### BEGIN SOLUTION
        m = self.budget // (len(self.stored) + len(task.y_train.unique()))
        for i in self.keep(task):
            self.stored.append((task.x_train[i[:m]], task.y_train[i[:m]], torch.full((len(i[:m]),), task.head)))
        ### END SOLUTION


class BufferWithReplacement(Buffer):
    def sample(self, n):
        ### BEGIN SOLUTION
        x, y, head = self.memory()
        i = torch.randint(len(x), (n,))
        return x[i], y[i], head[i]
        ### END SOLUTION


class BufferWholeMemory(Buffer):
    def sample(self, n):
        ### BEGIN SOLUTION
        x, y, head = self.memory()
        i = torch.randperm(len(x))
        return x[i], y[i], head[i]
        ### END SOLUTION


class BufferFirstDrawn(Buffer):
    def sample(self, n):
        ### BEGIN SOLUTION
        x, y, head = self.memory()
        return x[:n], y[:n], head[:n]
        ### END SOLUTION


class BufferSameDraw(Buffer):
    def sample(self, n):
        ### BEGIN SOLUTION
        x, y, head = self.memory()
        i = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[:n]  # the same draw every call
        return x[i], y[i], head[i]
        ### END SOLUTION


class BufferCurrentHead(Buffer):
    def replay(self, model, x, tasks):
        ### BEGIN SOLUTION
        if not self.stored:
            return None
        xs, ys, _ = self.sample(len(x))
        return Replay(xs, ys, tasks[-1].head)
        ### END SOLUTION


# ---- A-GEM -----------------------------------------------------------------------------------


class _AGEM(Buffer):
    """A-GEM on the student's buffer: `project` is what most variants get wrong."""
    reference_batch = 256

    def replay(self, model, x, tasks):
        ### BEGIN SOLUTION
        return None
        ### END SOLUTION

    def reference(self, model, tasks):
        ### BEGIN SOLUTION
        return memory_gradient(model, *self.sample(self.reference_batch))
        ### END SOLUTION

    def adjust_gradients(self, model, tasks):
        ### BEGIN SOLUTION
        if not self.stored:
            return
        set_flat_gradient(model, self.project(flat_gradient(model), self.reference(model, tasks)))
        ### END SOLUTION

    def project(self, g, ref):
        ### BEGIN SOLUTION
        dot = g @ ref
        return g - dot / (ref @ ref) * ref if dot < 0 else g
        ### END SOLUTION


class AGEMAlwaysProjects(_AGEM):
    def project(self, g, ref):
        ### BEGIN SOLUTION
        return g - (g @ ref) / (ref @ ref) * ref
        ### END SOLUTION


class AGEMInvertedCondition(_AGEM):
    def project(self, g, ref):
        ### BEGIN SOLUTION
        dot = g @ ref
        return g - dot / (ref @ ref) * ref if dot > 0 else g
        ### END SOLUTION


class AGEMWrongSign(_AGEM):
    def project(self, g, ref):
        ### BEGIN SOLUTION
        dot = g @ ref
        return g + dot / (ref @ ref) * ref if dot < 0 else g
        ### END SOLUTION


class AGEMNormNotSquared(_AGEM):
    def project(self, g, ref):
        ### BEGIN SOLUTION
        dot = g @ ref
        return g - dot / ref.norm() * ref if dot < 0 else g
        ### END SOLUTION


class AGEMUsesReference(_AGEM):
    def project(self, g, ref):
        ### BEGIN SOLUTION
        return ref if g @ ref < 0 else g
        ### END SOLUTION


class AGEMAlongReference(_AGEM):
    def project(self, g, ref):
        ### BEGIN SOLUTION
        dot = g @ ref
        return dot / (ref @ ref) * ref if dot < 0 else g  # the part along g_ref, not the rest
        ### END SOLUTION


class AGEMRolesSwapped(_AGEM):
    def project(self, g, ref):
        ### BEGIN SOLUTION
        dot = g @ ref
        return ref - dot / (g @ g) * g if dot < 0 else g
        ### END SOLUTION


class AGEMNotWrittenBack(_AGEM):
    def adjust_gradients(self, model, tasks):
        ### BEGIN SOLUTION
        if not self.stored:
            return
        g = flat_gradient(model)
        g = self.project(g, self.reference(model, tasks))  # computed, never written into p.grad
        ### END SOLUTION


class AGEMPerParameter(_AGEM):
    def adjust_gradients(self, model, tasks):
        ### BEGIN SOLUTION
        if not self.stored:
            return
        pieces = self.reference(model, tasks).split([p.numel() for p in model.parameters()])
        for p, piece in zip(model.parameters(), pieces, strict=True):  # each parameter on its own piece of g_ref
            r = piece.view_as(p)
            dot = (p.grad * r).sum()
            if dot < 0:
                p.grad = p.grad - dot / (r * r).sum() * r
        ### END SOLUTION


class AGEMCurrentHead(_AGEM):
    def reference(self, model, tasks):
        ### BEGIN SOLUTION
        x, y, _ = self.sample(self.reference_batch)
        return memory_gradient(model, x, y, tasks[-1].head)  # the stored samples through the current head
        ### END SOLUTION


class AGEMAlsoReplays(_AGEM):
    def replay(self, model, x, tasks):
        ### BEGIN SOLUTION
        return Replay(*self.sample(len(x))) if self.stored else None
        ### END SOLUTION


# ---- iCaRL's herding -------------------------------------------------------------------------


def _herding(features, m, normalise=True, exclude=True, divide="k", target="mean", pick="argmin", total="chosen"):
    ### BEGIN SOLUTION
    f = F.normalize(features, dim=1) if normalise else features
    mu = {"mean": f.mean(0), "raw mean": features.mean(0)}[target]
    running = {"chosen": f, "raw": features}[total]
    chosen, sum_so_far = [], torch.zeros_like(f[0])
    for k in range(1, m + 1):
        size = {"k": k, "1": 1, "m": m}[divide]
        distance = (mu - (sum_so_far + f) / size).norm(dim=1)
        if pick == "argmax":
            distance = -distance
        if exclude and chosen:
            distance[torch.stack(chosen)] = float("inf")
        i = distance.argmin()
        chosen.append(i)
        sum_so_far = sum_so_far + running[i]
    return torch.stack(chosen)
    ### END SOLUTION


def herding_renormalised_mean(features, m):
    """A legitimate variant (Rebuffi et al.'s and van de Ven's code): the class mean L2-normalised again."""
    ### BEGIN SOLUTION
    f = F.normalize(features, dim=1)
    mu = F.normalize(f.mean(0), dim=0)
    chosen, total = [], torch.zeros_like(mu)
    for k in range(1, m + 1):
        distance = (mu - (total + f) / k).norm(dim=1)
        if chosen:
            distance[torch.stack(chosen)] = float("inf")
        chosen.append(distance.argmin())
        total = total + f[chosen[-1]]
    return torch.stack(chosen)
    ### END SOLUTION


def herding_nearest(features, m):
    ### BEGIN SOLUTION
    f = F.normalize(features, dim=1)
    return (f - f.mean(0)).norm(dim=1).argsort()[:m]
    ### END SOLUTION


def herding_farthest(features, m):
    ### BEGIN SOLUTION
    f = F.normalize(features, dim=1)
    return (f - f.mean(0)).norm(dim=1).argsort(descending=True)[:m]
    ### END SOLUTION


def herding_not_normalised(features, m):
    ### BEGIN SOLUTION
    return _herding(features, m, normalise=False)
    ### END SOLUTION


def herding_raw_target(features, m):
    ### BEGIN SOLUTION
    return _herding(features, m, target="raw mean")
    ### END SOLUTION


def herding_raw_running_sum(features, m):
    ### BEGIN SOLUTION
    return _herding(features, m, total="raw")
    ### END SOLUTION


def herding_repeats(features, m):
    ### BEGIN SOLUTION
    return _herding(features, m, exclude=False)
    ### END SOLUTION


def herding_sum_not_mean(features, m):
    ### BEGIN SOLUTION
    return _herding(features, m, divide="1")
    ### END SOLUTION


def herding_divided_by_m(features, m):
    ### BEGIN SOLUTION
    return _herding(features, m, divide="m")
    ### END SOLUTION


def herding_argmax(features, m):
    ### BEGIN SOLUTION
    return _herding(features, m, pick="argmax")
    ### END SOLUTION


# ---- reservoir sampling ----------------------------------------------------------------------


def _reservoir(seen, n, budget, generator, draw_high, keep_below=None, dropped=-1):
    """Algorithm R's loop with one part changed: draw_high(s, start, n) is the exclusive upper end of j's
    draw for item s of a call that starts at `start`; keep_below (default budget) the bound j must be under."""
    ### BEGIN SOLUTION
    out = []
    for s in range(seen, seen + n):  # the stream's items of this call
        if s < budget:
            out.append(s)
            continue
        j = int(torch.randint(0, draw_high(s, seen, n), (1,), generator=generator))
        out.append(j if j < (budget if keep_below is None else keep_below) else dropped)
    return torch.tensor(out, dtype=torch.long)
    ### END SOLUTION


def reservoir_uniform_slot(seen, n, budget, generator=None):
    """A legitimate variant: kept with probability budget / (s + 1), then a slot drawn uniformly."""
    ### BEGIN SOLUTION
    s = seen + torch.arange(n)
    keep = torch.rand(n, generator=generator) < budget / (s + 1)
    slot = torch.randint(0, budget, (n,), generator=generator)
    return torch.where(s < budget, s, torch.where(keep, slot, torch.full_like(s, -1)))
    ### END SOLUTION


def reservoir_off_by_one(seen, n, budget, generator=None):
    ### BEGIN SOLUTION
    return _reservoir(seen, n, budget, generator, lambda s, start, size: s)
    ### END SOLUTION


def reservoir_one_chance_per_call(seen, n, budget, generator=None):
    ### BEGIN SOLUTION
    return _reservoir(seen, n, budget, generator, lambda s, start, size: start + 1)
    ### END SOLUTION


def reservoir_chance_after_the_call(seen, n, budget, generator=None):
    ### BEGIN SOLUTION
    return _reservoir(seen, n, budget, generator, lambda s, start, size: start + size)
    ### END SOLUTION


def reservoir_always_replaces(seen, n, budget, generator=None):
    ### BEGIN SOLUTION
    return _reservoir(seen, n, budget, generator, lambda s, start, size: budget)
    ### END SOLUTION


def reservoir_never_replaces(seen, n, budget, generator=None):
    ### BEGIN SOLUTION
    return _reservoir(seen, n, budget, generator, lambda s, start, size: s + 1, keep_below=0)
    ### END SOLUTION


def reservoir_dropped_to_slot_zero(seen, n, budget, generator=None):
    ### BEGIN SOLUTION
    return _reservoir(seen, n, budget, generator, lambda s, start, size: s + 1, dropped=0)
    ### END SOLUTION


def reservoir_slot_out_of_range(seen, n, budget, generator=None):
    ### BEGIN SOLUTION
    return _reservoir(seen, n, budget, generator, lambda s, start, size: s + 1, keep_below=budget + 1)
    ### END SOLUTION


def reservoir_ring_buffer(seen, n, budget, generator=None):
    ### BEGIN SOLUTION
    return (seen + torch.arange(n)) % budget
    ### END SOLUTION


def reservoir_fixed_slot(seen, n, budget, generator=None):
    ### BEGIN SOLUTION
    s = seen + torch.arange(n)
    keep = torch.rand(n, generator=generator) < budget / (s + 1)
    return torch.where(s < budget, s, torch.where(keep, s % budget, torch.full_like(s, -1)))  # its slot is fixed
    ### END SOLUTION


def reservoir_fills_one_slot(seen, n, budget, generator=None):
    ### BEGIN SOLUTION
    out = _reservoir(seen, n, budget, generator, lambda s, start, size: s + 1)
    return torch.where(seen + torch.arange(n) < budget, torch.full_like(out, seen), out)  # every new item at `seen`
    ### END SOLUTION

