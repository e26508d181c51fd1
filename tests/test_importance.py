"""Each importance against an independent computation: a hand-worked two-parameter case and a
loop over single samples (or single slices) with plain autograd."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cl_course.importance import (CurrentHead, fisher_diagonal, mas_importance, on_current_head,
                                  per_sample_gradient_sums, random_directions, rwalk_score, scp_importance,
                                  si_importance, si_path_step)
from cl_course.model import MLP
from helpers import assert_close, gradient


def samples(batches):
    for x, y in batches:
        for i in range(len(x)):
            yield x[i:i + 1], y[i:i + 1]


def mean_over_samples(model, batches, stat):
    parts = [stat(x, y) for x, y in samples(batches)]
    return {n: sum(p[n] for p in parts) / len(parts) for n in parts[0]}


# ---- hand-worked two-parameter cases -------------------------------------------------------

def two_logit_model(w1, w2):
    """logits = (w1 x, w2 x): exactly two parameters."""
    model = nn.Sequential(nn.Linear(1, 2, bias=False)).double()
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[w1], [w2]], dtype=torch.float64))
    return model


def test_fisher_two_parameters_by_hand():
    # w = (ln 3, 0), x = 1: p = (3/4, 1/4); d log p_c / d w_k = x (1[c=k] - p_k)
    model = two_logit_model(math.log(3), 0.0)
    x = torch.ones(2, 1, dtype=torch.float64)
    y = torch.tensor([0, 1])
    batches = [(x, y)]
    # label 0: grads (1/4, -1/4) -> squares 1/16; label 1: grads (-3/4, 3/4) -> squares 9/16
    empirical = fisher_diagonal(model, batches, "empirical")["0.weight"].flatten()
    torch.testing.assert_close(empirical, torch.tensor([5 / 16, 5 / 16], dtype=torch.float64))
    # exact: 3/4 * 1/16 + 1/4 * 9/16 = 3/16
    exact = fisher_diagonal(model, batches, "exact")["0.weight"].flatten()
    torch.testing.assert_close(exact, torch.tensor([3 / 16, 3 / 16], dtype=torch.float64))
    # HW14's batch mode squares the batch-mean gradient: ((1/4 - 3/4) / 2)^2 = 1/16
    batch = fisher_diagonal(model, batches, "batch")["0.weight"].flatten()
    torch.testing.assert_close(batch, torch.tensor([1 / 16, 1 / 16], dtype=torch.float64))


def test_mas_two_parameters_by_hand():
    # f = w x + b with w = 1, b = 0 and x = +1, -1: d f^2/dw = 2 (wx + b) x = 2, d f^2/db = 2 (wx + b) = +-2
    model = nn.Sequential(nn.Linear(1, 1)).double()
    with torch.no_grad():
        model[0].weight.fill_(1.0)
        model[0].bias.fill_(0.0)
    batches = [(torch.tensor([[1.0], [-1.0]], dtype=torch.float64), torch.zeros(2, dtype=torch.long))]
    per_sample = mas_importance(model, batches, per_sample=True)
    assert per_sample["0.weight"].item() == pytest.approx(2.0)
    assert per_sample["0.bias"].item() == pytest.approx(2.0)  # mean of |+2| and |-2|
    batch = mas_importance(model, batches, per_sample=False)
    assert batch["0.weight"].item() == pytest.approx(2.0)
    assert batch["0.bias"].item() == pytest.approx(0.0)  # |mean of +2 and -2|: HW14's cancels


def test_scp_two_parameters_by_hand():
    # f = (w1 x, w2 x), phi = mean(x) (w1, w2): d (xi . phi) / d w_k = xi_k mean(x)
    model = two_logit_model(0.3, -0.7)
    x = torch.tensor([[1.0], [2.0], [3.0]], dtype=torch.float64)  # mean 2
    batches = [(x, torch.zeros(3, dtype=torch.long))]
    xi = torch.tensor([[0.6, 0.8], [1.0, 0.0]], dtype=torch.float64)
    gamma = scp_importance(model, batches, xi)["0.weight"].flatten()
    # mean over the two slices of (xi_k * 2)^2: ((0.6*2)^2 + 2^2) / 2, ((0.8*2)^2 + 0) / 2
    torch.testing.assert_close(gamma, torch.tensor([(1.44 + 4) / 2, 2.56 / 2], dtype=torch.float64))
    averaged = scp_importance(model, batches, xi, sliced="averaged")["0.weight"].flatten()
    # HW14: |mean_l xi_l * 2| = |(0.8, 0.4) * 2|
    torch.testing.assert_close(averaged, torch.tensor([1.6, 0.8], dtype=torch.float64))


def test_si_path_step_two_parameters_by_hand():
    def t(*v):
        return torch.tensor(v, dtype=torch.float64)

    # W = (0.5, -0.2); the step was taken on g = (1, -2), of which the penalty's part is (0.4, 1):
    # the task loss's own gradient is g - g_pen = (0.6, -3). The step: after - before = (0.2 - 0.3, 0.4 - 0.1)
    # = (-0.1, 0.3). W += -(0.6 * -0.1), -(-3 * 0.3) = (0.06, 0.9), so W = (0.56, 0.7).
    W = {"p": t(0.5, -0.2)}
    out = si_path_step(W, {"p": t(1.0, -2.0)}, {"p": t(0.4, 1.0)}, {"p": t(0.3, 0.1)}, {"p": t(0.2, 0.4)})
    torch.testing.assert_close(out["p"], t(0.56, 0.7))
    # with the whole gradient it would have been -(1 * -0.1), -(-2 * 0.3) = (0.1, 0.6): W = (0.6, 0.4)
    assert not torch.allclose(out["p"], t(0.6, 0.4))


def test_si_and_rwalk_two_parameters_by_hand():
    def t(*v):
        return torch.tensor(v, dtype=torch.float64)

    W = {"p": t(0.0, 0.0)}
    zero = {"p": t(0.0, 0.0)}  # no penalty yet (the first task): the whole gradient is the task's
    si_path_step(W, {"p": t(1.0, -2.0)}, zero, {"p": t(0.0, 0.0)}, {"p": t(-0.1, 0.2)})
    torch.testing.assert_close(W["p"], t(0.1, 0.4))  # -(1 * -0.1), -(-2 * 0.2)
    delta = {"p": t(-0.1, 0.2)}
    torch.testing.assert_close(si_importance(W, delta, eps=0.1)["p"], t(0.1 / 0.11, 0.4 / 0.14))
    fisher = {"p": t(2.0, 1.0)}
    # 1/2 F Delta^2 + eps: 0.5 * 2 * 0.01 + 0.1 = 0.11 and 0.5 * 1 * 0.04 + 0.1 = 0.12
    torch.testing.assert_close(rwalk_score(W, fisher, delta, eps=0.1)["p"], t(0.1 / 0.11, 0.4 / 0.12))


def test_si_path_integral_under_a_penalty_is_the_task_losss_decrease():
    # The optimiser steps on L = L_task + lam (theta - theta*)^2 with L_task = 1/2 a theta^2. With small
    # steps, sum -(g - g_pen) dtheta approaches the line integral of -grad L_task, L_task(start) - L_task(end),
    # per coordinate, whatever path the penalty made the parameters take; the whole gradient would give
    # the decrease of L instead, which differs.
    a = torch.tensor([1.0, 3.0], dtype=torch.float64)
    anchor, lam, lr = torch.tensor([1.0, -0.5], dtype=torch.float64), 0.5, 1e-3
    theta = torch.tensor([2.0, -1.0], dtype=torch.float64)
    start, W = theta.clone(), {"p": torch.zeros(2, dtype=torch.float64)}
    for _ in range(1000):
        penalty_gradient = 2 * lam * (theta - anchor)
        g = a * theta + penalty_gradient
        new = theta - lr * g
        si_path_step(W, {"p": g}, {"p": penalty_gradient}, {"p": theta}, {"p": new})
        theta = new
    task_decrease = 0.5 * a * (start ** 2 - theta ** 2)
    torch.testing.assert_close(W["p"], task_decrease, rtol=3e-3, atol=0)
    total_decrease = task_decrease + lam * ((start - anchor) ** 2 - (theta - anchor) ** 2)
    assert not torch.allclose(W["p"], total_decrease, rtol=0.05)


def test_si_path_integral_on_sgd_matches_the_loss_decrease():
    # On L = 1/2 a theta^2 with small SGD steps and no penalty, sum -g dtheta approaches L(start) - L(end)
    a = torch.tensor([1.0, 3.0], dtype=torch.float64)
    theta = torch.tensor([2.0, -1.0], dtype=torch.float64)
    W, zero = {"p": torch.zeros(2, dtype=torch.float64)}, {"p": torch.zeros(2, dtype=torch.float64)}
    start, lr, by_hand = theta.clone(), 1e-3, torch.zeros(2, dtype=torch.float64)
    for _ in range(500):
        g = a * theta
        new = theta - lr * g
        si_path_step(W, {"p": g}, zero, {"p": theta}, {"p": new})
        by_hand += lr * g * g  # -g * (-lr g)
        theta = new
    torch.testing.assert_close(W["p"], by_hand)
    torch.testing.assert_close(W["p"], 0.5 * a * (start ** 2 - theta ** 2), rtol=2e-3, atol=0)


# ---- per-sample statistics against a batch-size-1 loop --------------------------------------

def test_empirical_fisher_matches_single_sample_loop(tiny_mlp, tiny_batches):
    expected = mean_over_samples(tiny_mlp, tiny_batches, lambda x, y: {
        n: g ** 2 for n, g in gradient(tiny_mlp, F.cross_entropy(tiny_mlp(x), y)).items()})
    assert_close(fisher_diagonal(tiny_mlp, tiny_batches, "empirical"), expected)


def test_exact_fisher_matches_loop_over_samples_and_classes(tiny_mlp, tiny_batches):
    def stat(x, y):
        p = F.softmax(tiny_mlp(x), 1)[0].detach()
        out = {n: 0 for n, _ in tiny_mlp.named_parameters()}
        for c in range(len(p)):
            g = gradient(tiny_mlp, -F.log_softmax(tiny_mlp(x), 1)[0, c])
            out = {n: out[n] + p[c] * g[n] ** 2 for n in g}
        return out
    assert_close(fisher_diagonal(tiny_mlp, tiny_batches, "exact"), mean_over_samples(tiny_mlp, tiny_batches, stat))


def test_exact_fisher_matches_torch_func_vmap(tiny_mlp, tiny_batches):
    # a second independent route: per-sample gradients materialised by torch.func
    from torch.func import functional_call, grad, vmap
    params = {n: p.detach() for n, p in tiny_mlp.named_parameters()}

    def log_p(prm, x, c):
        return F.log_softmax(functional_call(tiny_mlp, prm, (x[None],)), 1)[0, c]

    x = torch.cat([b[0] for b in tiny_batches])
    probs = F.softmax(tiny_mlp(x), 1).detach()
    total = {n: torch.zeros_like(p) for n, p in params.items()}
    for c in range(probs.shape[1]):
        grads = vmap(grad(log_p), in_dims=(None, 0, None))(params, x, c)
        for n, g in grads.items():
            total[n] += (probs[:, c].reshape(-1, *[1] * (g.dim() - 1)) * g ** 2).sum(0)
    assert_close(fisher_diagonal(tiny_mlp, tiny_batches, "exact"), {n: t / len(x) for n, t in total.items()})


def test_sampled_fisher_converges_to_exact(tiny_mlp):
    # y' ~ p(.|x): the mean of (d log p(y'|x))^2 over many draws is the exact Fisher
    x = torch.randn(1, 8, dtype=torch.float64).repeat(20000, 1)
    batches = [(x, torch.zeros(len(x), dtype=torch.long))]
    sampled = fisher_diagonal(tiny_mlp, batches, "sampled", generator=torch.Generator().manual_seed(0))
    exact = fisher_diagonal(tiny_mlp, batches, "exact")
    for n in exact:
        rel = (sampled[n] - exact[n]).norm() / exact[n].norm()
        assert rel < 0.05, f"{n}: sampled Fisher {rel:.3f} away from exact"


def test_batch_fisher_matches_loop_over_batches_and_is_not_per_sample(tiny_mlp, tiny_batches):
    grads = [gradient(tiny_mlp, F.cross_entropy(tiny_mlp(x), y)) for x, y in tiny_batches]
    expected = {n: sum(g[n] ** 2 for g in grads) / len(grads) for n in grads[0]}
    got = fisher_diagonal(tiny_mlp, tiny_batches, "batch")
    assert_close(got, expected)
    per_sample = fisher_diagonal(tiny_mlp, tiny_batches, "empirical")
    assert all((per_sample[n] >= got[n] / len(tiny_batches[0][0]) - 1e-12).all() for n in got)
    assert not torch.allclose(per_sample["fc1.weight"], got["fc1.weight"])


def test_mas_matches_single_sample_loop(tiny_mlp, tiny_batches):
    expected = mean_over_samples(tiny_mlp, tiny_batches, lambda x, y: {
        n: g.abs() for n, g in gradient(tiny_mlp, tiny_mlp(x).pow(2).sum()).items()})
    assert_close(mas_importance(tiny_mlp, tiny_batches, per_sample=True), expected)
    hw14 = [gradient(tiny_mlp, tiny_mlp(x).pow(2).sum(1).mean()) for x, _ in tiny_batches]
    assert_close(mas_importance(tiny_mlp, tiny_batches, per_sample=False),
                 {n: sum(g[n].abs() for g in hw14) / len(hw14) for n in hw14[0]})


def test_scp_independent_slices_match_one_backward_per_slice(tiny_mlp, tiny_batches):
    xi = random_directions(17, 4, torch.Generator().manual_seed(3)).double()
    x = torch.cat([b[0] for b in tiny_batches])
    per_slice = [gradient(tiny_mlp, tiny_mlp(x).mean(0) @ direction) for direction in xi]
    expected = {n: sum(g[n] ** 2 for g in per_slice) / len(xi) for n in per_slice[0]}
    assert_close(scp_importance(tiny_mlp, tiny_batches, xi), expected)


def test_scp_averaged_slice_is_hw14s(tiny_mlp, tiny_batches):
    xi = random_directions(9, 4, torch.Generator().manual_seed(4)).double()
    grads = []
    for x, _ in tiny_batches:
        total = sum(direction @ tiny_mlp(x).mean(0) for direction in xi) / len(xi)
        grads.append(gradient(tiny_mlp, total))
    assert_close(scp_importance(tiny_mlp, tiny_batches, xi, sliced="averaged"),
                 {n: sum(g[n].abs() for g in grads) / len(grads) for n in grads[0]})


def test_random_directions_are_unit_vectors():
    xi = random_directions(50, 10, torch.Generator().manual_seed(0))
    torch.testing.assert_close(xi.norm(dim=1), torch.ones(50))
    assert xi.std(0).min() > 0.2  # spread in every coordinate, not a constant


def test_multi_head_importance_only_touches_the_active_head(tiny_batches):
    torch.manual_seed(0)
    model = MLP(out_features=4, heads=3, hidden=(6, 5), in_features=8).double().use_head(1)
    fisher = fisher_diagonal(model, tiny_batches, "empirical")
    assert fisher["heads.1.weight"].abs().sum() > 0
    assert fisher["heads.0.weight"].abs().sum() == 0 and fisher["heads.2.bias"].abs().sum() == 0


def every_parameter_fisher(model, batches):
    """A correct answer that differentiates with respect to every parameter the model lists, as a student writes it."""
    names, params = zip(*model.named_parameters(), strict=True)
    total, n = {k: torch.zeros_like(p) for k, p in zip(names, params, strict=True)}, 0
    for x, y in samples(batches):
        grads = torch.autograd.grad(F.cross_entropy(model(x), y), params)
        total = {k: total[k] + g ** 2 for k, g in zip(names, grads, strict=True)}
        n += 1
    return {k: t / n for k, t in total.items()}


def test_an_answer_over_every_parameter_fails_on_a_multi_head_model_and_runs_on_its_current_head(tiny_batches):
    torch.manual_seed(0)
    model = MLP(out_features=4, heads=3, hidden=(6, 5), in_features=8).double().use_head(1)
    with pytest.raises(RuntimeError, match="not have been used in the graph"):  # what task-IL did to it
        every_parameter_fisher(model, tiny_batches)
    view = CurrentHead(model)
    assert [n for n, _ in view.named_parameters()] == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias",
                                                       "heads.1.weight", "heads.1.bias"]
    assert all(p is dict(model.named_parameters())[n] for n, p in view.named_parameters())  # the same tensors
    torch.testing.assert_close(view(tiny_batches[0][0]), model(tiny_batches[0][0]))
    got = on_current_head(every_parameter_fisher, model, tiny_batches)
    # independently: plain autograd on the whole model, the other heads' gradients absent (None) and so zero
    def squares(x, y):
        grads = torch.autograd.grad(F.cross_entropy(model(x), y), list(model.parameters()), allow_unused=True)
        return {n: torch.zeros_like(p) if g is None else g ** 2
                for (n, p), g in zip(model.named_parameters(), grads, strict=True)}
    expected = mean_over_samples(model, tiny_batches, squares)
    assert_close(got, expected)
    assert got["heads.0.weight"].abs().sum() == 0 and got["heads.2.bias"].abs().sum() == 0
    assert_close(got, fisher_diagonal(model, tiny_batches, "empirical"))  # the library's, on the whole model


def test_one_head_models_are_passed_as_they_are(tiny_mlp, tiny_batches):
    seen = []
    on_current_head(lambda model, batches: seen.append(model) or {}, tiny_mlp, tiny_batches)
    assert seen == [tiny_mlp]


def test_per_sample_sums_refuse_non_linear_parameters():
    model = nn.Sequential(nn.Linear(3, 2), nn.LayerNorm(2)).double()
    x = torch.randn(4, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match="nn.Linear layers only"):
        per_sample_gradient_sums(model, x, lambda out: (out.sum(1)[None], torch.ones(1, 4)))


def test_bad_options_are_refused(tiny_mlp, tiny_batches):
    with pytest.raises(ValueError, match="label mode"):
        fisher_diagonal(tiny_mlp, tiny_batches, "true")
    with pytest.raises(ValueError, match="slicing"):
        scp_importance(tiny_mlp, tiny_batches, torch.eye(4, dtype=torch.float64), sliced="one")
    with pytest.raises(ValueError, match="no data"):
        fisher_diagonal(tiny_mlp, [], "exact")
