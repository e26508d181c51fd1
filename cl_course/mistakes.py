"""Typical wrong answers for each blank, written out as code (cl_course/blanks.py pairs each with the
message a student sees when their result matches it). Self-checks store their values on the
published fixture; the hidden fixtures must reject every one of them. Each function has the
signature of the answer it imitates. They are close to the solutions, so the student edition
carries none of them: every body is a solution region."""
import torch
import torch.nn.functional as F


def _grads(model, scalar, retain_graph=False):
    ### BEGIN SOLUTION
    params = dict(model.named_parameters())  # written unlike importance.py's helper: the release check
    grads = torch.autograd.grad(scalar, list(params.values()), retain_graph=retain_graph)  # flags shared lines
    return dict(zip(params, grads, strict=True))
    ### END SOLUTION


def _per_sample_mean(model, batches, objective, transform):
    """mean over samples of transform(d objective(model, x_i, y_i) / d theta)."""
    ### BEGIN SOLUTION
    total, n = None, 0
    for x, y in batches:
        for i in range(len(x)):
            g = {k: transform(v) for k, v in _grads(model, objective(model, x[i:i + 1], y[i:i + 1])).items()}
            total = g if total is None else {k: total[k] + g[k] for k in g}
            n += 1
    return {k: v / n for k, v in total.items()}
    ### END SOLUTION


def _per_batch_mean(model, batches, objective, transform):
    ### BEGIN SOLUTION
    parts = [{k: transform(v) for k, v in _grads(model, objective(model, x, y)).items()} for x, y in batches]
    return {k: sum(p[k] for p in parts) / len(parts) for k in parts[0]}
    ### END SOLUTION


def nll(model, x, y):
    ### BEGIN SOLUTION
    return F.cross_entropy(model(x), y)
    ### END SOLUTION


def squared_norm(model, x, y):
    ### BEGIN SOLUTION
    return model(x).pow(2).sum(1).mean()
    ### END SOLUTION


def square(g):
    ### BEGIN SOLUTION
    return g.pow(2)
    ### END SOLUTION


# ---- EWC -------------------------------------------------------------------------------------

def fisher_batch_mean(model, batches):
    ### BEGIN SOLUTION
    return _per_batch_mean(model, batches, nll, square)
    ### END SOLUTION


def fisher_absolute(model, batches):
    ### BEGIN SOLUTION
    return _per_sample_mean(model, batches, nll, torch.abs)
    ### END SOLUTION


def fisher_not_squared(model, batches):
    ### BEGIN SOLUTION
    return _per_sample_mean(model, batches, nll, lambda g: g)
    ### END SOLUTION


def fisher_over_batches(model, batches):
    ### BEGIN SOLUTION
    n = sum(len(x) for x, _ in batches)
    return {k: v * n / len(batches) for k, v in _per_sample_mean(model, batches, nll, square).items()}
    ### END SOLUTION


def fisher_exact(model, batches):
    ### BEGIN SOLUTION
    total, n = None, 0
    for x, _ in batches:
        for i in range(len(x)):
            log_p = F.log_softmax(model(x[i:i + 1]), 1)[0]
            for c in range(len(log_p)):
                grads = _grads(model, -log_p[c], retain_graph=True)
                g = {k: log_p[c].exp().detach() * v.pow(2) for k, v in grads.items()}
                total = g if total is None else {k: total[k] + g[k] for k in g}
            n += 1
    return {k: v / n for k, v in total.items()}
    ### END SOLUTION


def fisher_last_batch(model, batches):
    ### BEGIN SOLUTION
    return _per_sample_mean(model, batches[-1:], nll, square)
    ### END SOLUTION


# ---- MAS -------------------------------------------------------------------------------------

def mas_batch_mean(model, batches):
    ### BEGIN SOLUTION
    return _per_batch_mean(model, batches, squared_norm, torch.abs)
    ### END SOLUTION


def mas_squared(model, batches):
    ### BEGIN SOLUTION
    return _per_sample_mean(model, batches, squared_norm, square)
    ### END SOLUTION


def mas_no_abs(model, batches):
    ### BEGIN SOLUTION
    return _per_sample_mean(model, batches, squared_norm, lambda g: g)
    ### END SOLUTION


def mas_norm_not_squared(model, batches):
    ### BEGIN SOLUTION
    return _per_sample_mean(model, batches, lambda m, x, y: m(x).norm(dim=1).mean(), torch.abs)
    ### END SOLUTION


def mas_softmax(model, batches):
    ### BEGIN SOLUTION
    return _per_sample_mean(model, batches, lambda m, x, y: F.softmax(m(x), 1).pow(2).sum(1).mean(), torch.abs)
    ### END SOLUTION


# ---- SCP -------------------------------------------------------------------------------------

def _mean_output(model, batches):
    ### BEGIN SOLUTION
    x = torch.cat([x for x, _ in batches])
    return model(x).mean(0)
    ### END SOLUTION


def scp_averaged_slice(model, batches, directions):
    ### BEGIN SOLUTION
    return {k: v.abs() for k, v in _grads(model, _mean_output(model, batches) @ directions.mean(0)).items()}
    ### END SOLUTION


def scp_absolute(model, batches, directions):
    ### BEGIN SOLUTION
    parts = [{k: v.abs() for k, v in _grads(model, _mean_output(model, batches) @ xi).items()} for xi in directions]
    return {k: sum(p[k] for p in parts) / len(parts) for k in parts[0]}
    ### END SOLUTION


def scp_summed_slices(model, batches, directions):
    ### BEGIN SOLUTION
    parts = [{k: v.pow(2) for k, v in _grads(model, _mean_output(model, batches) @ xi).items()} for xi in directions]
    return {k: sum(p[k] for p in parts) for k in parts[0]}
    ### END SOLUTION


def scp_per_sample(model, batches, directions):
    ### BEGIN SOLUTION
    def one_sample(x):
        parts = [{k: v.pow(2) for k, v in _grads(model, model(x)[0] @ xi).items()} for xi in directions]
        return {k: sum(p[k] for p in parts) / len(parts) for k in parts[0]}
    rows = [one_sample(x[i:i + 1]) for x, _ in batches for i in range(len(x))]
    return {k: sum(r[k] for r in rows) / len(rows) for k in rows[0]}
    ### END SOLUTION


# ---- SI and RWalk ----------------------------------------------------------------------------

def si_step_wrong_sign(path_integral, gradients, before, after):
    ### BEGIN SOLUTION
    return {n: w + gradients[n] * (after[n] - before[n]) for n, w in path_integral.items()}
    ### END SOLUTION


def si_step_absolute(path_integral, gradients, before, after):
    ### BEGIN SOLUTION
    return {n: w + (gradients[n] * (after[n] - before[n])).abs() for n, w in path_integral.items()}
    ### END SOLUTION


def si_step_parameter_not_change(path_integral, gradients, before, after):
    ### BEGIN SOLUTION
    return {n: w - gradients[n] * after[n] for n, w in path_integral.items()}
    ### END SOLUTION


def si_step_overwrites(path_integral, gradients, before, after):
    ### BEGIN SOLUTION
    return {n: -gradients[n] * (after[n] - before[n]) for n in path_integral}
    ### END SOLUTION


def si_absolute_delta(path_integral, delta, eps):
    ### BEGIN SOLUTION
    return {n: w / (delta[n].abs() + eps) for n, w in path_integral.items()}
    ### END SOLUTION


def si_eps_outside(path_integral, delta, eps):
    ### BEGIN SOLUTION
    return {n: w / delta[n].pow(2) + eps for n, w in path_integral.items()}
    ### END SOLUTION


def si_no_eps(path_integral, delta, eps):
    ### BEGIN SOLUTION
    return {n: w / delta[n].pow(2) for n, w in path_integral.items()}
    ### END SOLUTION


def si_times_delta(path_integral, delta, eps):
    ### BEGIN SOLUTION
    return {n: w * (delta[n].pow(2) + eps) for n, w in path_integral.items()}
    ### END SOLUTION


def rwalk_no_half(path_integral, fisher, delta, eps):
    ### BEGIN SOLUTION
    return {n: w / (fisher[n] * delta[n].pow(2) + eps) for n, w in path_integral.items()}
    ### END SOLUTION


def rwalk_si_denominator(path_integral, fisher, delta, eps):
    ### BEGIN SOLUTION
    return {n: w / (delta[n].pow(2) + eps) for n, w in path_integral.items()}
    ### END SOLUTION


def rwalk_delta_not_squared(path_integral, fisher, delta, eps):
    ### BEGIN SOLUTION
    return {n: w / (0.5 * fisher[n] * delta[n] + eps) for n, w in path_integral.items()}
    ### END SOLUTION


def rwalk_plus_fisher(path_integral, fisher, delta, eps):
    ### BEGIN SOLUTION
    return {n: w / (0.5 * fisher[n] * delta[n].pow(2) + eps) + fisher[n] for n, w in path_integral.items()}
    ### END SOLUTION
