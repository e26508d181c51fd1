"""Lesson 1's six answers as a student writes them from the notebook's docstrings: plain loops, one backward
pass per sample (and, in SCP, per slice), torch.autograd.grad over every parameter. They compute what the
notebook's vectorised solutions compute (tests/test_selfcheck.py checks them), only slower:
`python benchmarks/quick_profile.py --answers loop` runs the notebook with these in place of its solutions."""
import torch
import torch.nn.functional as F


def fisher_diagonal(model, batches):
    names, params = zip(*model.named_parameters(), strict=True)
    fisher = {n: torch.zeros_like(p) for n, p in zip(names, params, strict=True)}
    count = 0
    for x, y in batches:
        for i in range(len(x)):
            loss = F.cross_entropy(model(x[i:i + 1]), y[i:i + 1])
            for n, g in zip(names, torch.autograd.grad(loss, params), strict=True):
                fisher[n] += g ** 2
            count += 1
    return {n: f / count for n, f in fisher.items()}


def mas_importance(model, batches):
    names, params = zip(*model.named_parameters(), strict=True)
    omega = {n: torch.zeros_like(p) for n, p in zip(names, params, strict=True)}
    count = 0
    for x, _ in batches:
        for i in range(len(x)):
            norm = model(x[i:i + 1]).pow(2).sum()
            for n, g in zip(names, torch.autograd.grad(norm, params), strict=True):
                omega[n] += g.abs()
            count += 1
    return {n: o / count for n, o in omega.items()}


def scp_importance(model, batches, directions):
    names, params = zip(*model.named_parameters(), strict=True)
    phi = torch.cat([model(x) for x, _ in batches]).mean(0)
    gamma = {n: torch.zeros_like(p) for n, p in zip(names, params, strict=True)}
    for xi in directions:
        for n, g in zip(names, torch.autograd.grad(phi @ xi, params, retain_graph=True),
                             strict=True):
            gamma[n] += g ** 2
    return {n: g / len(directions) for n, g in gamma.items()}


def si_path_step(path_integral, gradients, penalty_gradients, before, after):
    for n in path_integral:
        path_integral[n] = path_integral[n] - (gradients[n] - penalty_gradients[n]) * (after[n] - before[n])
    return path_integral


def si_importance(path_integral, delta, eps):
    return {n: w / (delta[n] ** 2 + eps) for n, w in path_integral.items()}


def rwalk_score(path_integral, fisher, delta, eps):
    return {n: w / (0.5 * fisher[n] * delta[n] ** 2 + eps) for n, w in path_integral.items()}
