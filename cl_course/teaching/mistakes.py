"""Typical wrong answers for each blank, written out as code (blanks.py pairs each with the
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
    """mean over samples of transform(d objective(model, x_i, y_i) / d theta); one pass over `batches`."""
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
    """mean over batches of transform(d objective(model, x_b, y_b) / d theta), the objective a batch mean."""
    ### BEGIN SOLUTION
    parts = [{k: transform(v) for k, v in _grads(model, objective(model, x, y)).items()} for x, y in batches]
    return {k: sum(p[k] for p in parts) / len(parts) for k in parts[0]}
    ### END SOLUTION


def _mean_of_batch_means(model, batches, objective, transform):
    """mean over batches of each batch's per-sample mean: unequal batches weigh their samples unequally."""
    ### BEGIN SOLUTION
    means = [_per_sample_mean(model, [(x, y)], objective, transform) for x, y in batches]
    return {k: sum(m[k] for m in means) / len(means) for k in means[0]}
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
    total, n_batches = None, 0
    for x, y in batches:
        g = {k: v * len(x) for k, v in _per_sample_mean(model, [(x, y)], nll, square).items()}
        total = g if total is None else {k: total[k] + g[k] for k in g}
        n_batches += 1
    return {k: v / n_batches for k, v in total.items()}
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
    for batch in batches:
        last = batch  # each batch replaces the one before
    return _per_sample_mean(model, [last], nll, square)
    ### END SOLUTION


def fisher_mean_of_batch_means(model, batches):
    ### BEGIN SOLUTION
    return _mean_of_batch_means(model, batches, nll, square)
    ### END SOLUTION


def _accumulating_grad(model, batches, objective, transform, zero_each_batch):
    """A per-sample loop with backward() that never zeroes p.grad between samples (or only at each
    batch's start): each transform is of the running sum of the gradients so far."""
    ### BEGIN SOLUTION
    params = dict(model.named_parameters())
    total = {k: torch.zeros_like(p) for k, p in params.items()}
    n = 0
    model.zero_grad(set_to_none=True)
    for x, y in batches:
        if zero_each_batch:
            model.zero_grad(set_to_none=True)
        for i in range(len(x)):
            objective(model, x[i:i + 1], y[i:i + 1]).backward()
            total = {k: total[k] + transform(params[k].grad.detach()) for k in total}
            n += 1
    return {k: t / n for k, t in total.items()}
    ### END SOLUTION


def fisher_grad_not_zeroed(model, batches):
    ### BEGIN SOLUTION
    return _accumulating_grad(model, batches, nll, square, zero_each_batch=False)
    ### END SOLUTION


def fisher_grad_zeroed_per_batch(model, batches):
    ### BEGIN SOLUTION
    return _accumulating_grad(model, batches, nll, square, zero_each_batch=True)
    ### END SOLUTION


def fisher_argmax_labels(model, batches):
    ### BEGIN SOLUTION
    return _per_sample_mean(model, batches, lambda m, x, y: F.cross_entropy(m(x), m(x).argmax(1)), square)
    ### END SOLUTION


def fisher_nll_on_logits(model, batches):
    ### BEGIN SOLUTION
    return _per_sample_mean(model, batches, lambda m, x, y: F.nll_loss(m(x), y), square)
    ### END SOLUTION


def fisher_squared_batch_sum(model, batches):
    ### BEGIN SOLUTION
    total, n = None, 0
    for x, y in batches:
        g = {k: v.pow(2) for k, v in _grads(model, F.cross_entropy(model(x), y, reduction="sum")).items()}
        total = g if total is None else {k: total[k] + g[k] for k in g}
        n += len(x)
    return {k: v / n for k, v in total.items()}
    ### END SOLUTION


def fisher_of_probability(model, batches):
    ### BEGIN SOLUTION
    return _per_sample_mean(model, batches, lambda m, x, y: F.softmax(m(x), 1).gather(1, y[:, None]).mean(), square)
    ### END SOLUTION


def fisher_softmax_into_cross_entropy(model, batches):
    ### BEGIN SOLUTION
    return _per_sample_mean(model, batches, lambda m, x, y: F.cross_entropy(F.softmax(m(x), 1), y), square)
    ### END SOLUTION


def fisher_halved(model, batches):
    ### BEGIN SOLUTION
    return _per_sample_mean(model, batches, nll, lambda g: 0.5 * g.pow(2))
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


def mas_mean_of_batch_means(model, batches):
    ### BEGIN SOLUTION
    return _mean_of_batch_means(model, batches, squared_norm, torch.abs)
    ### END SOLUTION


def mas_half_squared_norm(model, batches):
    ### BEGIN SOLUTION
    return _per_sample_mean(model, batches, lambda m, x, y: 0.5 * m(x).pow(2).sum(1).mean(), torch.abs)
    ### END SOLUTION


def mas_mean_over_outputs(model, batches):
    ### BEGIN SOLUTION
    return _per_sample_mean(model, batches, lambda m, x, y: m(x).pow(2).mean(), torch.abs)
    ### END SOLUTION


def mas_grad_not_zeroed(model, batches):
    ### BEGIN SOLUTION
    return _accumulating_grad(model, batches, squared_norm, torch.abs, zero_each_batch=False)
    ### END SOLUTION


def mas_abs_of_batch_sums(model, batches):
    ### BEGIN SOLUTION
    total, n = None, 0
    for x, _ in batches:
        g = {k: v.abs() for k, v in _grads(model, model(x).pow(2).sum()).items()}
        total = g if total is None else {k: total[k] + g[k] for k in g}
        n += len(x)
    return {k: v / n for k, v in total.items()}
    ### END SOLUTION


def mas_l1_norm(model, batches):
    ### BEGIN SOLUTION
    return _per_sample_mean(model, batches, lambda m, x, y: m(x).abs().sum(1).mean(), torch.abs)
    ### END SOLUTION


# ---- SCP -------------------------------------------------------------------------------------

def _mean_output(model, batches):
    ### BEGIN SOLUTION
    x = torch.cat([x for x, _ in batches])
    return model(x).mean(0)
    ### END SOLUTION


def _mean_over_slices(model, phi, directions, transform):
    """mean over the slices xi_l of transform(d (xi_l . phi) / d theta)."""
    ### BEGIN SOLUTION
    parts = [{k: transform(v) for k, v in _grads(model, phi @ xi, retain_graph=True).items()} for xi in directions]
    return {k: sum(p[k] for p in parts) / len(parts) for k in parts[0]}
    ### END SOLUTION


def scp_averaged_slice(model, batches, directions):
    ### BEGIN SOLUTION
    return {k: v.abs() for k, v in _grads(model, _mean_output(model, batches) @ directions.mean(0)).items()}
    ### END SOLUTION


def scp_absolute(model, batches, directions):
    ### BEGIN SOLUTION
    return _mean_over_slices(model, _mean_output(model, batches), directions, torch.abs)
    ### END SOLUTION


def scp_summed_slices(model, batches, directions):
    ### BEGIN SOLUTION
    averaged = _mean_over_slices(model, _mean_output(model, batches), directions, square)
    return {k: v * len(directions) for k, v in averaged.items()}
    ### END SOLUTION


def scp_per_sample(model, batches, directions):
    ### BEGIN SOLUTION
    rows = [_mean_over_slices(model, model(x[i:i + 1])[0], directions, square)
            for x, _ in batches for i in range(len(x))]
    return {k: sum(r[k] for r in rows) / len(rows) for k in rows[0]}
    ### END SOLUTION


def scp_phi_per_batch(model, batches, directions):
    ### BEGIN SOLUTION
    per_batch = [_mean_over_slices(model, model(x).mean(0), directions, square) for x, _ in batches]
    return {k: sum(b[k] for b in per_batch) / len(per_batch) for k in per_batch[0]}
    ### END SOLUTION


def scp_grad_not_zeroed(model, batches, directions):
    ### BEGIN SOLUTION
    params = dict(model.named_parameters())
    phi = _mean_output(model, batches)
    total = {k: torch.zeros_like(p) for k, p in params.items()}
    model.zero_grad(set_to_none=True)
    for xi in directions:  # p.grad holds the sum of the slices' gradients so far
        (phi @ xi).backward(retain_graph=True)
        total = {k: total[k] + params[k].grad.detach() ** 2 for k in total}
    return {k: t / len(directions) for k, t in total.items()}
    ### END SOLUTION


def scp_phi_summed(model, batches, directions):
    ### BEGIN SOLUTION
    phi = model(torch.cat([x for x, _ in batches])).sum(0)
    return _mean_over_slices(model, phi, directions, square)
    ### END SOLUTION


def scp_phi_mean_of_batch_means(model, batches, directions):
    ### BEGIN SOLUTION
    means = [model(x).mean(0) for x, _ in batches]
    return _mean_over_slices(model, sum(means) / len(means), directions, square)
    ### END SOLUTION


def scp_slices_averaged_twice(model, batches, directions):
    ### BEGIN SOLUTION
    averaged = _mean_over_slices(model, _mean_output(model, batches), directions, square)
    return {k: v / len(directions) for k, v in averaged.items()}
    ### END SOLUTION


def scp_not_squared(model, batches, directions):
    ### BEGIN SOLUTION
    return _mean_over_slices(model, _mean_output(model, batches), directions, lambda g: g)
    ### END SOLUTION


# ---- SI and RWalk ----------------------------------------------------------------------------

def si_step_total_gradient(path_integral, gradients, penalty_gradients, before, after):
    ### BEGIN SOLUTION
    return {n: w - gradients[n] * (after[n] - before[n]) for n, w in path_integral.items()}
    ### END SOLUTION


def si_step_adds_penalty(path_integral, gradients, penalty_gradients, before, after):
    ### BEGIN SOLUTION
    return {n: w - (gradients[n] + penalty_gradients[n]) * (after[n] - before[n]) for n, w in path_integral.items()}
    ### END SOLUTION


def si_step_penalty_only(path_integral, gradients, penalty_gradients, before, after):
    ### BEGIN SOLUTION
    return {n: w - penalty_gradients[n] * (after[n] - before[n]) for n, w in path_integral.items()}
    ### END SOLUTION


def si_step_wrong_sign(path_integral, gradients, penalty_gradients, before, after):
    ### BEGIN SOLUTION
    return {n: w + (gradients[n] - penalty_gradients[n]) * (after[n] - before[n]) for n, w in path_integral.items()}
    ### END SOLUTION


def si_step_absolute(path_integral, gradients, penalty_gradients, before, after):
    ### BEGIN SOLUTION
    return {n: w + ((gradients[n] - penalty_gradients[n]) * (after[n] - before[n])).abs()
            for n, w in path_integral.items()}
    ### END SOLUTION


def si_step_parameter_not_change(path_integral, gradients, penalty_gradients, before, after):
    ### BEGIN SOLUTION
    return {n: w - (gradients[n] - penalty_gradients[n]) * after[n] for n, w in path_integral.items()}
    ### END SOLUTION


def si_step_overwrites(path_integral, gradients, penalty_gradients, before, after):
    ### BEGIN SOLUTION
    return {n: -(gradients[n] - penalty_gradients[n]) * (after[n] - before[n]) for n in path_integral}
    ### END SOLUTION


def si_absolute_path(path_integral, delta, eps):
    ### BEGIN SOLUTION
    return {n: w.abs() / (delta[n].pow(2) + eps) for n, w in path_integral.items()}
    ### END SOLUTION


def si_relu_path(path_integral, delta, eps):
    ### BEGIN SOLUTION
    return {n: w.clamp(min=0) / (delta[n].pow(2) + eps) for n, w in path_integral.items()}
    ### END SOLUTION


def si_absolute_delta(path_integral, delta, eps):
    ### BEGIN SOLUTION
    return {n: w / (delta[n].abs() + eps) for n, w in path_integral.items()}
    ### END SOLUTION


def si_delta_not_squared(path_integral, delta, eps):
    ### BEGIN SOLUTION
    return {n: w / (delta[n] + eps) for n, w in path_integral.items()}
    ### END SOLUTION


def si_eps_inside_square(path_integral, delta, eps):
    ### BEGIN SOLUTION
    return {n: w / (delta[n] + eps).pow(2) for n, w in path_integral.items()}
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


def rwalk_eps_times_fisher(path_integral, fisher, delta, eps):
    ### BEGIN SOLUTION
    return {n: w / (0.5 * fisher[n] * (delta[n].pow(2) + eps)) for n, w in path_integral.items()}
    ### END SOLUTION


def rwalk_fisher_squared(path_integral, fisher, delta, eps):
    ### BEGIN SOLUTION
    return {n: w / (0.5 * (fisher[n] * delta[n]).pow(2) + eps) for n, w in path_integral.items()}
    ### END SOLUTION


def rwalk_no_eps(path_integral, fisher, delta, eps):
    ### BEGIN SOLUTION
    return {n: w / (0.5 * fisher[n] * delta[n].pow(2)) for n, w in path_integral.items()}
    ### END SOLUTION


def rwalk_eps_halved(path_integral, fisher, delta, eps):
    ### BEGIN SOLUTION
    return {n: w / (0.5 * (fisher[n] * delta[n].pow(2) + eps)) for n, w in path_integral.items()}
    ### END SOLUTION
