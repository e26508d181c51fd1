"""Typical wrong answers for each blank, written out as code, with the message a student sees when
their result matches one. Self-checks store these values on the published fixture; the hidden tests
must reject every one of them. Each function has the signature of the answer it imitates."""
import torch
import torch.nn.functional as F


def _grads(model, scalar, retain_graph=False):
    names, params = zip(*model.named_parameters())
    return dict(zip(names, torch.autograd.grad(scalar, params, retain_graph=retain_graph)))


def _per_sample_mean(model, batches, objective, transform):
    """mean over samples of transform(d objective(model, x_i, y_i) / d theta)."""
    total, n = None, 0
    for x, y in batches:
        for i in range(len(x)):
            g = {k: transform(v) for k, v in _grads(model, objective(model, x[i:i + 1], y[i:i + 1])).items()}
            total = g if total is None else {k: total[k] + g[k] for k in g}
            n += 1
    return {k: v / n for k, v in total.items()}


def _per_batch_mean(model, batches, objective, transform):
    parts = [{k: transform(v) for k, v in _grads(model, objective(model, x, y)).items()} for x, y in batches]
    return {k: sum(p[k] for p in parts) / len(parts) for k in parts[0]}


def nll(model, x, y):
    return F.cross_entropy(model(x), y)


def squared_norm(model, x, y):
    return model(x).pow(2).sum(1).mean()


def square(g):
    return g.pow(2)


# ---- EWC -------------------------------------------------------------------------------------

def fisher_batch_mean(model, batches):
    return _per_batch_mean(model, batches, nll, square)


def fisher_absolute(model, batches):
    return _per_sample_mean(model, batches, nll, torch.abs)


def fisher_not_squared(model, batches):
    return _per_sample_mean(model, batches, nll, lambda g: g)


def fisher_over_batches(model, batches):
    n = sum(len(x) for x, _ in batches)
    return {k: v * n / len(batches) for k, v in _per_sample_mean(model, batches, nll, square).items()}


def fisher_exact(model, batches):
    total, n = None, 0
    for x, _ in batches:
        for i in range(len(x)):
            log_p = F.log_softmax(model(x[i:i + 1]), 1)[0]
            for c in range(len(log_p)):
                g = {k: log_p[c].exp().detach() * v.pow(2) for k, v in _grads(model, -log_p[c], retain_graph=True).items()}
                total = g if total is None else {k: total[k] + g[k] for k in g}
            n += 1
    return {k: v / n for k, v in total.items()}


def fisher_last_batch(model, batches):
    return _per_sample_mean(model, batches[-1:], nll, square)


# ---- MAS -------------------------------------------------------------------------------------

def mas_batch_mean(model, batches):
    return _per_batch_mean(model, batches, squared_norm, torch.abs)


def mas_squared(model, batches):
    return _per_sample_mean(model, batches, squared_norm, square)


def mas_no_abs(model, batches):
    return _per_sample_mean(model, batches, squared_norm, lambda g: g)


def mas_norm_not_squared(model, batches):
    return _per_sample_mean(model, batches, lambda m, x, y: m(x).norm(dim=1).mean(), torch.abs)


def mas_softmax(model, batches):
    return _per_sample_mean(model, batches, lambda m, x, y: F.softmax(m(x), 1).pow(2).sum(1).mean(), torch.abs)


# ---- SCP -------------------------------------------------------------------------------------

def _mean_output(model, batches):
    x = torch.cat([x for x, _ in batches])
    return model(x).mean(0)


def scp_averaged_slice(model, batches, directions):
    return {k: v.abs() for k, v in _grads(model, _mean_output(model, batches) @ directions.mean(0)).items()}


def scp_absolute(model, batches, directions):
    parts = [{k: v.abs() for k, v in _grads(model, _mean_output(model, batches) @ xi).items()} for xi in directions]
    return {k: sum(p[k] for p in parts) / len(parts) for k in parts[0]}


def scp_summed_slices(model, batches, directions):
    parts = [{k: v.pow(2) for k, v in _grads(model, _mean_output(model, batches) @ xi).items()} for xi in directions]
    return {k: sum(p[k] for p in parts) for k in parts[0]}


def scp_per_sample(model, batches, directions):
    def one_sample(x):
        parts = [{k: v.pow(2) for k, v in _grads(model, model(x)[0] @ xi).items()} for xi in directions]
        return {k: sum(p[k] for p in parts) / len(parts) for k in parts[0]}
    rows = [one_sample(x[i:i + 1]) for x, _ in batches for i in range(len(x))]
    return {k: sum(r[k] for r in rows) / len(rows) for k in rows[0]}


# ---- SI and RWalk ----------------------------------------------------------------------------

def si_step_wrong_sign(path_integral, gradients, before, after):
    return {n: w + gradients[n] * (after[n] - before[n]) for n, w in path_integral.items()}


def si_step_absolute(path_integral, gradients, before, after):
    return {n: w + (gradients[n] * (after[n] - before[n])).abs() for n, w in path_integral.items()}


def si_step_parameter_not_change(path_integral, gradients, before, after):
    return {n: w - gradients[n] * after[n] for n, w in path_integral.items()}


def si_step_overwrites(path_integral, gradients, before, after):
    return {n: -gradients[n] * (after[n] - before[n]) for n in path_integral}


def si_absolute_delta(path_integral, delta, eps):
    return {n: w / (delta[n].abs() + eps) for n, w in path_integral.items()}


def si_eps_outside(path_integral, delta, eps):
    return {n: w / delta[n].pow(2) + eps for n, w in path_integral.items()}


def si_no_eps(path_integral, delta, eps):
    return {n: w / delta[n].pow(2) for n, w in path_integral.items()}


def si_times_delta(path_integral, delta, eps):
    return {n: w * (delta[n].pow(2) + eps) for n, w in path_integral.items()}


def rwalk_no_half(path_integral, fisher, delta, eps):
    return {n: w / (fisher[n] * delta[n].pow(2) + eps) for n, w in path_integral.items()}


def rwalk_si_denominator(path_integral, fisher, delta, eps):
    return {n: w / (delta[n].pow(2) + eps) for n, w in path_integral.items()}


def rwalk_delta_not_squared(path_integral, fisher, delta, eps):
    return {n: w / (0.5 * fisher[n] * delta[n] + eps) for n, w in path_integral.items()}


def rwalk_plus_fisher(path_integral, fisher, delta, eps):
    return {n: w / (0.5 * fisher[n] * delta[n].pow(2) + eps) + fisher[n] for n, w in path_integral.items()}


MISTAKES = {
    "fisher_diagonal": [
        (fisher_batch_mean, "looks like the square of the batch-mean gradient, not the mean of squared "
                            "per-sample gradients"),
        (fisher_absolute, "looks like the mean of |per-sample gradient|; EWC squares each per-sample gradient"),
        (fisher_not_squared, "looks like the mean gradient itself; square each sample's gradient before averaging"),
        (fisher_over_batches, "divides by the number of batches; average over samples"),
        (fisher_exact, "looks like the exact Fisher (every class weighted by p(c|x)); use the true labels y"),
        (fisher_last_batch, "uses only the last batch; average over every batch in `batches`"),
    ],
    "mas_importance": [
        (mas_batch_mean, "takes |.| of the batch-mean gradient; MAS takes |.| of each sample's gradient, "
                         "then the mean"),
        (mas_squared, "squares the gradient; MAS uses its absolute value"),
        (mas_no_abs, "the absolute value is missing"),
        (mas_norm_not_squared, "differentiates ||f(x)||, not the squared norm ||f(x)||^2"),
        (mas_softmax, "uses softmax probabilities; MAS uses the network's output f(x), the logits"),
    ],
    "scp_importance": [
        (scp_averaged_slice, "averages the directions into one slice with |gradient| (HW14's sample code); "
                             "take one squared gradient per slice and average those"),
        (scp_absolute, "uses |gradient| per slice; SCP squares it"),
        (scp_summed_slices, "sums over the slices; average them (divide by L)"),
        (scp_per_sample, "uses each sample's output; SCP slices the mean output phi over all samples"),
    ],
    "si_path_step": [
        (si_step_wrong_sign, "wrong sign: W accumulates -g * (after - before)"),
        (si_step_absolute, "takes an absolute value; W accumulates the signed -g * (after - before)"),
        (si_step_parameter_not_change, "multiplies the gradient by the parameter, not by its change"),
        (si_step_overwrites, "replaces W instead of adding this step to it"),
    ],
    "si_importance": [
        (si_absolute_delta, "divides by |Delta| + eps; SI divides by Delta^2 + eps"),
        (si_eps_outside, "adds eps after dividing; it belongs in the denominator"),
        (si_no_eps, "the damping eps is missing from the denominator"),
        (si_times_delta, "multiplies by Delta^2 + eps instead of dividing"),
    ],
    "rwalk_score": [
        (rwalk_no_half, "the 1/2 in (1/2) F Delta^2 is missing"),
        (rwalk_si_denominator, "uses SI's denominator Delta^2 + eps; RWalk weights Delta^2 by the Fisher"),
        (rwalk_delta_not_squared, "Delta is not squared"),
        (rwalk_plus_fisher, "adds the Fisher; rwalk_score is the path score alone (the strategy adds F)"),
    ],
}
