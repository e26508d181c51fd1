"""iCaRL (Rebuffi et al. 2017), class-incremental: exemplars chosen by herding, trained on beside the new
task with sigmoid outputs whose old classes are distilled from the previous model, and classification
by the nearest mean of exemplars in the feature space (the last hidden layer, L2-normalised).
"""
import torch
import torch.nn.functional as F

from .strategies import Strategy, classes_of, frozen_copy


def herding_selection(features, m):
    """iCaRL's herding: indices of m samples ([m], m <= N), chosen one at a time so that the mean of the
    chosen L2-normalised features stays as close as it can to the mean of all of them. The order is the
    point: its first k are herding's choice for k exemplars, so a smaller memory keeps a prefix."""
    ### BEGIN SOLUTION
    f = F.normalize(features, dim=1).double()  # float64: near-ties of the expanded distance below stay apart
    target, total, squares = f.mean(0), torch.zeros_like(f[0]), f.pow(2).sum(1)
    taken = torch.zeros(len(f), dtype=torch.bool, device=f.device)
    chosen = []
    for k in range(1, min(m, len(f)) + 1):  # a loop over exemplars, each step vectorised over the samples
        # |target - (total + f_i) / k|^2 = |a|^2 - 2 a . f_i / k + |f_i|^2 / k^2 with a = target - total / k:
        # one product of the features with a vector per step (a class of 6,000 x 400 features: about 2 ms)
        a = target - total / k
        i = (squares / k - 2 * (f @ a)).masked_fill(taken, float("inf")).argmin()
        chosen.append(i)
        total, taken[i] = total + f[i], True
    return torch.stack(chosen)
    ### END SOLUTION


def quota(budget, classes):
    """Each class's share of a memory of `budget` samples in all, budget // classes (at least 1)."""
    if budget < classes:
        raise ValueError(f"a memory budget of {budget} cannot keep one sample of each of the {classes} classes "
                         f"seen; give a budget of at least {classes}")
    return budget // classes


def class_mean(features):
    """A class's prototype: the normalised mean of its normalised features, [D]."""
    return F.normalize(F.normalize(features, dim=1).mean(0), dim=0)


def nearest_mean_scores(features, means):
    """-|| f / |f| - mu_c ||, [N, C]: the argmax is the nearest class mean."""
    return -torch.cdist(F.normalize(features, dim=1), means)


class ICaRL(Strategy):
    """Class-IL only (its classifier compares every class). At most `budget` exemplars in all: after each task
    m = budget // classes seen, the new classes get m exemplars each in herding's order and the old ones keep
    the first m of theirs (Rebuffi et al.'s fixed memory K and ReduceExemplarSet)."""

    def __init__(self, budget=1000, seed=0, herding=None):
        super().__init__()
        self.budget = budget
        self.herding = herding or herding_selection  # the notebook's can stand in for the library's
        self.exemplars = {}  # class -> inputs [m, ...] in herding's order
        self.previous = self.current = self.means = None

    def before_task(self, model, tasks):
        self.current, self.means = tasks[-1], None

    def training_data(self, tasks):
        task = tasks[-1]
        if not self.exemplars:
            return task.x_train, task.y_train, task.head
        labels = [torch.full((len(x),), c, device=x.device) for c, x in self.exemplars.items()]
        return (torch.cat([task.x_train, *self.exemplars.values()]), torch.cat([task.y_train, *labels]), task.head)

    def loss(self, model, x, y, logits, tasks):
        """Binary cross-entropy over the classes seen so far: one-hot for the labels, and the previous
        model's sigmoid outputs for the old classes (their distillation)."""
        seen = torch.tensor(classes_of(tasks), device=y.device)
        targets = F.one_hot(y, logits.shape[1]).to(logits.dtype)
        if self.previous is not None:
            old = torch.tensor(classes_of(tasks[:-1]), device=y.device)
            with torch.no_grad():
                targets[:, old] = torch.sigmoid(self.previous(x)[:, old])
        return F.binary_cross_entropy_with_logits(logits[:, seen], targets[:, seen], reduction="sum") / len(x)

    def after_step(self, model, tasks):
        self.means = None  # the features moved

    @torch.no_grad()
    def after_task(self, model, tasks):
        task = tasks[-1]
        m = quota(self.budget, len(self.exemplars) + len(task.classes))
        for c in task.classes:
            x = task.x_train[task.y_train == c]
            self.exemplars[c] = x[self.herding(model.features(x), m)]
        self.exemplars = {c: x[:m].clone() for c, x in self.exemplars.items()}  # a slice keeps what it drops
        self.previous, self.means = frozen_copy(model), None

    @torch.no_grad()
    def class_means(self, model):
        """{class: prototype} from the exemplars; the current task's classes, whose exemplars are chosen
        when it ends, from all of its training data."""
        groups = dict(self.exemplars)
        if self.current is not None:
            groups |= {c: self.current.x_train[self.current.y_train == c] for c in self.current.classes
                       if c not in groups}
        return {c: class_mean(model.features(x)) for c, x in groups.items() if len(x)}

    def predict(self, model, x, task):  # class-IL: the nearest mean over every class seen, whatever the task
        if self.means is None:
            self.means = self.class_means(model)
        if not self.means:
            return model(x)
        classes = list(self.means)
        nearest = nearest_mean_scores(model.features(x), torch.stack([self.means[c] for c in classes]))
        scores = torch.full((len(x), model.heads[0].out_features), float("-inf"), dtype=nearest.dtype, device=x.device)
        scores[:, classes] = nearest
        return scores
