"""Typical wrong answers to lesson 2's blanks, written out as code (cl_course/blanks.py pairs each with
the message a student whose result matches it reads). Like mistakes.py, every body is a solution
region: the student edition carries none of them. The strategy classes are written the way a student
would write them in the notebook: a buffer of tensors x, y, head, not the library's Memory."""
import torch
import torch.nn.functional as F

from .replay import flat_gradient, memory_gradient, set_flat_gradient
from .strategies import LwF, Replay, Strategy, frozen_copy, outputs_of_old_heads

# ---- the distillation term -------------------------------------------------------------------


def distillation_no_t_squared(logits, teacher_logits, temperature):
    ### BEGIN SOLUTION
    targets = F.softmax(teacher_logits / temperature, 1)
    return -(targets * F.log_softmax(logits / temperature, 1)).sum(1).mean()
    ### END SOLUTION


def distillation_teacher_not_softened(logits, teacher_logits, temperature):
    ### BEGIN SOLUTION
    targets = F.softmax(teacher_logits, 1)
    return -(targets * F.log_softmax(logits / temperature, 1)).sum(1).mean() * temperature ** 2
    ### END SOLUTION


def distillation_summed(logits, teacher_logits, temperature):
    ### BEGIN SOLUTION
    targets = F.softmax(teacher_logits / temperature, 1)
    return -(targets * F.log_softmax(logits / temperature, 1)).sum() * temperature ** 2
    ### END SOLUTION


def distillation_hard_targets(logits, teacher_logits, temperature):
    ### BEGIN SOLUTION
    return F.cross_entropy(logits / temperature, teacher_logits.argmax(1)) * temperature ** 2
    ### END SOLUTION


def distillation_roles_swapped(logits, teacher_logits, temperature):
    ### BEGIN SOLUTION
    targets = F.softmax(logits / temperature, 1)
    return -(targets * F.log_softmax(teacher_logits / temperature, 1)).sum(1).mean() * temperature ** 2
    ### END SOLUTION


# ---- LwF -------------------------------------------------------------------------------------


class LwFNoCopy(LwF):
    def after_task(self, model, tasks):
        ### BEGIN SOLUTION
        self.previous = model  # the model itself: it keeps training, so its "old" outputs are today's
        ### END SOLUTION


class LwFLatestHead(LwF):
    def after_task(self, model, tasks):
        ### BEGIN SOLUTION
        self.previous = frozen_copy(model)
        ### END SOLUTION

    def replay(self, model, x, tasks):
        ### BEGIN SOLUTION
        if self.previous is None:
            return None
        return Replay(x, self.previous(x, tasks[-2].head), tasks[-2].head, self.temperature)
        ### END SOLUTION


class LwFNoTemperature(LwFLatestHead):
    def replay(self, model, x, tasks):
        ### BEGIN SOLUTION
        if self.previous is None:
            return None
        xs, head, logits = outputs_of_old_heads(self.previous, x, tasks)
        return Replay(xs, logits, head)
        ### END SOLUTION


class LwFProbabilities(LwFLatestHead):
    def replay(self, model, x, tasks):
        ### BEGIN SOLUTION
        if self.previous is None:
            return None
        xs, head, logits = outputs_of_old_heads(self.previous, x, tasks)
        return Replay(xs, F.softmax(logits / self.temperature, 1), head, self.temperature)
        ### END SOLUTION


class LwFHardLabels(LwFLatestHead):
    def replay(self, model, x, tasks):
        ### BEGIN SOLUTION
        if self.previous is None:
            return None
        xs, head, logits = outputs_of_old_heads(self.previous, x, tasks)
        return Replay(xs, logits.argmax(1), head, self.temperature)
        ### END SOLUTION


class LwFCurrentHeadToo(LwFLatestHead):
    def replay(self, model, x, tasks):
        ### BEGIN SOLUTION
        if self.previous is None:
            return None
        xs, head, logits = outputs_of_old_heads(self.previous, x, tasks + [tasks[-1]])
        return Replay(xs, logits, head, temperature=self.temperature)
        ### END SOLUTION


# ---- experience replay -----------------------------------------------------------------------


class Buffer(Strategy):
    """A student's experience replay: per_class random samples of each label of every finished task."""

    def __init__(self, per_class=100):
        super().__init__()
        self.per_class = per_class
        self.x = self.y = self.head = None

    def keep(self, task):
        ### BEGIN SOLUTION
        chosen = [torch.nonzero(task.y_train == c).flatten() for c in task.y_train.unique()]
        return torch.cat([i[torch.randperm(len(i))[:self.per_class]] for i in chosen])
        ### END SOLUTION

    def store(self, task):
        ### BEGIN SOLUTION
        i = self.keep(task)
        new = (task.x_train[i], task.y_train[i], torch.full((len(i),), task.head))
        self.x, self.y, self.head = new if self.x is None else (torch.cat([a, b]) for a, b in
                                                                zip((self.x, self.y, self.head), new, strict=True))
        ### END SOLUTION

    def after_task(self, model, tasks):
        ### BEGIN SOLUTION
        self.store(tasks[-1])
        ### END SOLUTION

    def sample(self, n):
        ### BEGIN SOLUTION
        i = torch.randperm(len(self.x))[:n]
        return self.x[i], self.y[i], self.head[i]
        ### END SOLUTION

    def replay(self, model, x, tasks):
        ### BEGIN SOLUTION
        return None if self.x is None else Replay(*self.sample(len(x)))
        ### END SOLUTION


class BufferLatestOnly(Buffer):
    def after_task(self, model, tasks):
        ### BEGIN SOLUTION
        self.x = None  # each task replaces the one before
        self.store(tasks[-1])
        ### END SOLUTION


class BufferFirstOfStream(Buffer):
    def keep(self, task):
        ### BEGIN SOLUTION
        return torch.arange(min(self.per_class * len(task.y_train.unique()), len(task.y_train)))
        ### END SOLUTION


class BufferWithReplacement(Buffer):
    def sample(self, n):
        ### BEGIN SOLUTION
        i = torch.randint(len(self.x), (n,))
        return self.x[i], self.y[i], self.head[i]
        ### END SOLUTION


class BufferWholeMemory(Buffer):
    def sample(self, n):
        ### BEGIN SOLUTION
        i = torch.randperm(len(self.x))
        return self.x[i], self.y[i], self.head[i]
        ### END SOLUTION


class BufferCurrentHead(Buffer):
    def replay(self, model, x, tasks):
        ### BEGIN SOLUTION
        if self.head is None:
            return None
        xs, ys, _ = self.sample(len(x))
        return Replay(xs, ys, tasks[-1].head)
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


# ---- A-GEM -----------------------------------------------------------------------------------


class _AGEM(Buffer):
    """A-GEM on the student's buffer: `project` is what the variants get wrong."""
    reference_batch = 256

    def replay(self, model, x, tasks):
        ### BEGIN SOLUTION
        return None
        ### END SOLUTION

    def adjust_gradients(self, model, tasks):
        ### BEGIN SOLUTION
        if self.head is None:
            return
        reference = memory_gradient(model, *self.sample(self.reference_batch))
        set_flat_gradient(model, self.project(flat_gradient(model), reference))
        ### END SOLUTION


class AGEMAlwaysProjects(_AGEM):
    def project(self, g, ref):
        ### BEGIN SOLUTION
        return g - (g @ ref) / (ref @ ref) * ref
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


class AGEMRolesSwapped(_AGEM):
    def project(self, g, ref):
        ### BEGIN SOLUTION
        dot = g @ ref
        return ref - dot / (g @ g) * g if dot < 0 else g
        ### END SOLUTION


class AGEMAlsoReplays(_AGEM):
    def project(self, g, ref):
        ### BEGIN SOLUTION
        dot = g @ ref
        return g - dot / (ref @ ref) * ref if dot < 0 else g
        ### END SOLUTION

    def replay(self, model, x, tasks):
        ### BEGIN SOLUTION
        return None if self.x is None else Replay(*self.sample(len(x)))
        ### END SOLUTION


# ---- iCaRL's herding -------------------------------------------------------------------------


def herding_nearest(features, m):
    ### BEGIN SOLUTION
    f = F.normalize(features, dim=1)
    return (f - f.mean(0)).norm(dim=1).argsort()[:m]
    ### END SOLUTION


def _herding(features, m, normalise=True, exclude=True, divide=True):
    ### BEGIN SOLUTION
    f = F.normalize(features, dim=1) if normalise else features
    target, total, chosen = f.mean(0), torch.zeros_like(f[0]), []
    for k in range(1, m + 1):
        distance = (target - (total + f) / (k if divide else 1)).norm(dim=1)
        if exclude and chosen:
            distance[torch.stack(chosen)] = float("inf")
        i = distance.argmin()
        chosen.append(i)
        total = total + f[i]
    return torch.stack(chosen)
    ### END SOLUTION


def herding_not_normalised(features, m):
    ### BEGIN SOLUTION
    return _herding(features, m, normalise=False)
    ### END SOLUTION


def herding_repeats(features, m):
    ### BEGIN SOLUTION
    return _herding(features, m, exclude=False)
    ### END SOLUTION


def herding_sum_not_mean(features, m):
    ### BEGIN SOLUTION
    return _herding(features, m, divide=False)
    ### END SOLUTION


def herding_farthest(features, m):
    ### BEGIN SOLUTION
    f = F.normalize(features, dim=1)
    return (f - f.mean(0)).norm(dim=1).argsort(descending=True)[:m]
    ### END SOLUTION
