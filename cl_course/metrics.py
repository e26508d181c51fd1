"""Continual-learning metrics on an accuracy matrix R, R[i][j] = accuracy on task j after training task i.

Accuracies in %; T tasks (0-based below); b[j] = accuracy of the randomly initialised model on task j.
Also the rank correlation of importance estimates (Omega) between methods.
"""
from itertools import combinations

import torch


def average_accuracy(R, k=None):
    """HW14's metric: A_k = (1 / (k+1)) * sum_{j=0..k} R[k][j], the mean accuracy over tasks 0..k after
    training task k (default k = T-1, the end of training)."""
    k = len(R) - 1 if k is None else k
    return sum(R[k][:k + 1]) / (k + 1)


def backward_transfer(R):
    """BWT (Lopez-Paz & Ranzato 2017): (1 / (T-1)) * sum_{j=0..T-2} (R[T-1][j] - R[j][j]), how the
    accuracy on each earlier task changed from just after training it to the end; negative = forgetting.
    0 for a single task."""
    T = len(R)
    return sum(R[-1][j] - R[j][j] for j in range(T - 1)) / (T - 1) if T > 1 else 0.0


def forward_transfer(R, b):
    """FWT (Lopez-Paz & Ranzato 2017): (1 / (T-1)) * sum_{j=1..T-1} (R[j-1][j] - b[j]), the accuracy on
    each task just before training it, against the randomly initialised model's accuracy b[j] on it;
    positive = earlier tasks already helped. 0 for a single task."""
    T = len(R)
    return sum(R[j - 1][j] - b[j] for j in range(1, T)) / (T - 1) if T > 1 else 0.0


def forgetting(R):
    """Forgetting (Chaudhry et al. 2018): (1 / (T-1)) * sum_{j=0..T-2} f_j with
    f_j = max_{l=j..T-2} R[l][j] - R[T-1][j], the best accuracy on task j at the end of any task before
    the last minus its final accuracy; positive = forgotten (negative if the task improved later).
    0 for a single task."""
    T = len(R)
    return sum(max(R[i][j] for i in range(j, T - 1)) - R[-1][j] for j in range(T - 1)) / (T - 1) if T > 1 else 0.0


def intransigence(R, reference):
    """Intransigence (Chaudhry et al. 2018, the RWalk paper): (1 / T) * sum_{k=0..T-1} I_k with
    I_k = R_ref[k][k] - R[k][k], where R_ref is the accuracy matrix of a reference model trained jointly
    on the data of tasks 0..k (the "joint" run; R_ref[k][k] is its accuracy on task k after task k).
    It measures how much worse a method learns each new task than it could; positive = unable to learn
    (the price of holding old parameters), near 0 = learns new tasks as well as joint training."""
    T = len(R)
    if len(reference) < T:
        raise ValueError(f"the reference run has {len(reference)} tasks, fewer than the {T} of R")
    return sum(reference[k][k] - R[k][k] for k in range(T)) / T


def summary(R, b):
    return {"average_accuracy": average_accuracy(R), "backward_transfer": backward_transfer(R),
            "forward_transfer": forward_transfer(R, b), "forgetting": forgetting(R)}


def _average_ranks(x):
    """1-based ranks of the flattened x, ties getting the mean of the ranks they span."""
    # torch.unique sorts; counts[u] equal values share ranks start+1..start+count, whose mean is
    # cumsum - (count - 1) / 2. No Python loop, so 1.5M parameters take well under a second.
    _, inverse, counts = torch.unique(x.reshape(-1), return_inverse=True, return_counts=True)
    counts = counts.double()
    return (counts.cumsum(0) - (counts - 1) / 2)[inverse]


def _pearson(x, y):
    x, y = x - x.mean(), y - y.mean()
    denominator = (x.square().sum() * y.square().sum()).sqrt()
    return float((x * y).sum() / denominator) if denominator > 0 else float("nan")  # constant input: undefined


def rank_correlation(a, b):
    """Spearman's rho of two tensors (flattened, same number of elements): the Pearson correlation of
    their ranks, tied values getting the average of their ranks (importances have many exact zeros,
    e.g. from dead ReLUs). +1: same ordering, -1: reversed; nan if either is constant."""
    a, b = a.detach().reshape(-1).double(), b.detach().reshape(-1).double()
    if a.numel() != b.numel():
        raise ValueError(f"rank_correlation needs the same number of elements, got {a.numel()} and {b.numel()}")
    return _pearson(_average_ranks(a.cpu()), _average_ranks(b.cpu()))


def _flat(importance, names):
    return torch.cat([importance[n].detach().reshape(-1).double().cpu() for n in names])


def importance_correlations(importances):
    """{(m1, m2): Spearman's rho} for every pair of methods (in the given order, m1 before m2) of
    importances = {method: {parameter name: Omega}}, over all parameters concatenated in the first
    method's parameter order."""
    methods = list(importances)
    if not methods:
        return {}
    names = list(importances[methods[0]])
    for m in methods[1:]:
        if set(importances[m]) != set(names):
            raise ValueError(f"{m}'s parameters differ from {methods[0]}'s")
    ranks = {m: _average_ranks(_flat(importances[m], names)) for m in methods}  # once per method, not per pair
    return {(m1, m2): _pearson(ranks[m1], ranks[m2]) for m1, m2 in combinations(methods, 2)}
