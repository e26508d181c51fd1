"""Typical wrong answers to lesson 3's blanks (context-specific components), written out as code (blanks.py pairs
each with the message a student whose answer behaves like it reads), and the legitimate variants that must pass.
Like mistakes.py, every body is a solution region: the student edition carries none of them."""
import torch
import torch.nn.functional as F

# ---- PackNet's pruning -----------------------------------------------------------------------


def _mask_at(weight, indices):
    """A bool mask shaped like weight, True at the flat `indices`."""
    ### BEGIN SOLUTION
    mask = torch.zeros(weight.shape, dtype=torch.bool, device=weight.device).flatten()
    mask[indices] = True
    return mask.view_as(weight)
    ### END SOLUTION


def _free_magnitudes(weight, free, fill):
    ### BEGIN SOLUTION
    return torch.where(free, weight.abs(), torch.full_like(weight, fill)).flatten()
    ### END SOLUTION


def _largest_free(weight, free, keep):
    """The right mask, which some mistakes then spoil."""
    ### BEGIN SOLUTION
    return _mask_at(weight, _free_magnitudes(weight, free, -1.0).topk(min(keep, int(free.sum()))).indices)
    ### END SOLUTION


def _kth_largest_free(weight, free, keep):
    ### BEGIN SOLUTION
    return weight.abs()[free].sort(descending=True).values[min(keep, int(free.sum())) - 1]
    ### END SOLUTION


def prune_threshold(weight, free, keep):
    """A legitimate variant: the free weights at least as large as the keep-th largest free magnitude."""
    ### BEGIN SOLUTION
    return free & (weight.abs() >= _kth_largest_free(weight, free, keep))
    ### END SOLUTION


def prune_signed(weight, free, keep):
    ### BEGIN SOLUTION
    signed = torch.where(free, weight, torch.full_like(weight, -torch.inf)).flatten()
    return _mask_at(weight, signed.topk(min(keep, int(free.sum()))).indices)
    ### END SOLUTION


def prune_smallest(weight, free, keep):
    ### BEGIN SOLUTION
    magnitude = _free_magnitudes(weight, free, torch.inf)
    return _mask_at(weight, magnitude.topk(min(keep, int(free.sum())), largest=False).indices)
    ### END SOLUTION


def prune_frozen_too(weight, free, keep):
    ### BEGIN SOLUTION
    return _mask_at(weight, weight.abs().flatten().topk(keep).indices)  # `free` unused
    ### END SOLUTION


def prune_layer_then_free(weight, free, keep):
    ### BEGIN SOLUTION
    return _mask_at(weight, weight.abs().flatten().topk(keep).indices) & free
    ### END SOLUTION


def prune_uncapped(weight, free, keep):
    ### BEGIN SOLUTION
    return _mask_at(weight, _free_magnitudes(weight, free, 0.0).topk(keep).indices)  # keep, however few are free
    ### END SOLUTION


def prune_transposed(weight, free, keep):
    ### BEGIN SOLUTION
    return _mask_at(weight, _free_magnitudes(weight.T, free.T, -1.0).topk(min(keep, int(free.sum()))).indices)
    ### END SOLUTION


def prune_one_too_few(weight, free, keep):
    ### BEGIN SOLUTION
    return free & (weight.abs() > _kth_largest_free(weight, free, keep))
    ### END SOLUTION


def prune_pruned_returned(weight, free, keep):
    ### BEGIN SOLUTION
    return free & ~_largest_free(weight, free, keep)
    ### END SOLUTION


def prune_in_use_returned(weight, free, keep):
    ### BEGIN SOLUTION
    return ~free | _largest_free(weight, free, keep)
    ### END SOLUTION


# ---- HAT's gradient mask ---------------------------------------------------------------------


def hat_larger_complement(a_out, a_in):
    """A legitimate variant: max(1 - a_out, 1 - a_in), the same number as 1 - min(a_out, a_in)."""
    ### BEGIN SOLUTION
    return torch.maximum(1 - a_out[:, None], 1 - a_in[None, :])
    ### END SOLUTION


def hat_max(a_out, a_in):
    ### BEGIN SOLUTION
    return 1 - torch.maximum(a_out[:, None], a_in[None, :])
    ### END SOLUTION


def hat_product(a_out, a_in):
    ### BEGIN SOLUTION
    return 1 - a_out[:, None] * a_in[None, :]
    ### END SOLUTION


def hat_attention(a_out, a_in):
    ### BEGIN SOLUTION
    return torch.minimum(a_out[:, None], a_in[None, :])
    ### END SOLUTION


def hat_output_only(a_out, a_in):
    ### BEGIN SOLUTION
    return 1 - a_out[:, None]
    ### END SOLUTION


def hat_input_only(a_out, a_in):
    ### BEGIN SOLUTION
    return 1 - a_in[None, :]
    ### END SOLUTION


def hat_complements_product(a_out, a_in):
    ### BEGIN SOLUTION
    return (1 - a_out[:, None]) * (1 - a_in[None, :])
    ### END SOLUTION


def hat_mean(a_out, a_in):
    ### BEGIN SOLUTION
    return 1 - (a_out[:, None] + a_in[None, :]) / 2
    ### END SOLUTION


def hat_thresholded(a_out, a_in):
    ### BEGIN SOLUTION
    return 1 - (torch.minimum(a_out[:, None], a_in[None, :]) > 0.5).to(a_out.dtype)
    ### END SOLUTION


# ---- HAT's embedding compensation ------------------------------------------------------------


def compensation_unclamped(e, s, s_max):
    """A legitimate variant: without the clamp, the same number wherever |s e| <= 50."""
    ### BEGIN SOLUTION
    return s_max * (torch.cosh(s * e) + 1) / (s * (torch.cosh(e) + 1))
    ### END SOLUTION


def compensation_sigmoid_slopes(e, s, s_max):
    """A legitimate variant: (s_max / s) sigma'(e) / sigma'(s e), sigma' = sigma (1 - sigma) = 1 / (2 (cosh + 1))."""
    ### BEGIN SOLUTION
    def slope(v):
        return torch.sigmoid(v) * (1 - torch.sigmoid(v))
    return s_max * slope(e) / (s * slope(s * e))
    ### END SOLUTION


def compensation_half_angle(e, s, s_max):
    """A legitimate variant: cosh(v) + 1 = 2 cosh(v / 2)^2."""
    ### BEGIN SOLUTION
    return s_max * torch.cosh(s * e / 2) ** 2 / (s * torch.cosh(e / 2) ** 2)
    ### END SOLUTION


def compensation_cosh_swapped(e, s, s_max):
    ### BEGIN SOLUTION
    return s_max * (torch.cosh(e) + 1) / (s * (torch.cosh(s * e) + 1))
    ### END SOLUTION


def compensation_scales_swapped(e, s, s_max):
    ### BEGIN SOLUTION
    return s * (torch.cosh(s * e) + 1) / (s_max * (torch.cosh(e) + 1))
    ### END SOLUTION


def compensation_no_plus_one(e, s, s_max):
    ### BEGIN SOLUTION
    return s_max * torch.cosh(s * e) / (s * torch.cosh(e))
    ### END SOLUTION


def compensation_no_s(e, s, s_max):
    ### BEGIN SOLUTION
    return s_max * (torch.cosh(s * e) + 1) / (torch.cosh(e) + 1)
    ### END SOLUTION


def compensation_no_s_max(e, s, s_max):
    ### BEGIN SOLUTION
    return (torch.cosh(s * e) + 1) / (s * (torch.cosh(e) + 1))
    ### END SOLUTION


def compensation_slopes_only(e, s, s_max):
    ### BEGIN SOLUTION
    return (torch.cosh(s * e) + 1) / (torch.cosh(e) + 1)
    ### END SOLUTION


def compensation_reciprocal(e, s, s_max):
    ### BEGIN SOLUTION
    return s * (torch.cosh(e) + 1) / (s_max * (torch.cosh(s * e) + 1))
    ### END SOLUTION


def compensation_exp(e, s, s_max):
    ### BEGIN SOLUTION
    return s_max * (torch.exp(s * e) + 1) / (s * (torch.exp(e) + 1))
    ### END SOLUTION


# ---- a progressive column's forward pass -----------------------------------------------------


def _adapter(adapter, h):
    """The lateral as the library computes it, from the earlier columns' activations h read detached."""
    ### BEGIN SOLUTION
    return adapter(h.detach())
    ### END SOLUTION


def _previous_layer(activations, i):
    ### BEGIN SOLUTION
    return activations[i - 1]
    ### END SOLUTION


def _from_the_second_layer(i, last):
    ### BEGIN SOLUTION
    return i > 0
    ### END SOLUTION


def _column(column, x, earlier, lateral=_adapter, read=_previous_layer, where=_from_the_second_layer,
            after_relu=False, relu_logits=False, pre_activations=False):
    """A column's forward pass with one part changed: lateral(adapter, h) the lateral of the earlier columns'
    activations h; read(activations, i) which of an earlier column's activations layer i reads; where(i, last)
    which layers have a lateral."""
    ### BEGIN SOLUTION
    h, out, last = x, [], len(column.layers) - 1
    for i, linear in enumerate(column.layers):
        z = linear(h)
        side = 0
        if column.laterals is not None and where(i, last):
            side = lateral(column.laterals[i - 1], torch.cat([read(e, i) for e in earlier], 1))
        z = z if after_relu else z + side
        h = z if i == last and not relu_logits else torch.relu(z)
        h = h + side if after_relu else h
        out.append(z if pre_activations else h)
    return out
    ### END SOLUTION


def lateral_written_out(column, x, earlier):
    """A legitimate variant: the adapter written out, U relu(V (alpha h)), instead of called."""
    ### BEGIN SOLUTION
    return _column(column, x, earlier, lateral=lambda a, h: a.out(torch.relu(a.project(a.alpha * h.detach()))))
    ### END SOLUTION


def lateral_same_layer(column, x, earlier):
    ### BEGIN SOLUTION
    return _column(column, x, earlier, read=lambda activations, i: activations[i])
    ### END SOLUTION


def lateral_after_relu(column, x, earlier):
    ### BEGIN SOLUTION
    return _column(column, x, earlier, after_relu=True)
    ### END SOLUTION


def lateral_on_first_layer(column, x, earlier):
    ### BEGIN SOLUTION
    return _column(column, x, earlier, where=lambda i, last: True)  # layer 0: laterals[-1] on the logits
    ### END SOLUTION


def lateral_not_on_logits(column, x, earlier):
    ### BEGIN SOLUTION
    return _column(column, x, earlier, where=lambda i, last: 0 < i < last)
    ### END SOLUTION


def lateral_no_alpha(column, x, earlier):
    ### BEGIN SOLUTION
    return _column(column, x, earlier, lateral=lambda a, h: a.out(torch.relu(a.project(h.detach()))))
    ### END SOLUTION


def lateral_alpha_on_output(column, x, earlier):
    ### BEGIN SOLUTION
    return _column(column, x, earlier, lateral=lambda a, h: a.alpha * a.out(torch.relu(a.project(h.detach()))))
    ### END SOLUTION


def lateral_no_adapter_relu(column, x, earlier):
    ### BEGIN SOLUTION
    return _column(column, x, earlier, lateral=lambda a, h: a.out(a.project(a.alpha * h.detach())))
    ### END SOLUTION


def lateral_relu_on_logits(column, x, earlier):
    ### BEGIN SOLUTION
    return _column(column, x, earlier, relu_logits=True)
    ### END SOLUTION


def lateral_pre_activations(column, x, earlier):
    ### BEGIN SOLUTION
    return _column(column, x, earlier, pre_activations=True)
    ### END SOLUTION


def lateral_not_detached(column, x, earlier):
    ### BEGIN SOLUTION
    return _column(column, x, earlier, lateral=lambda a, h: a(h))
    ### END SOLUTION


def lateral_detached_after_adapter(column, x, earlier):
    ### BEGIN SOLUTION
    return _column(column, x, earlier, lateral=lambda a, h: a(h).detach())
    ### END SOLUTION


# ---- mode-IMM's merge ------------------------------------------------------------------------


def _weighted(networks, fishers, weight, divide=True):
    """sum_k weight(F_k) theta_k, divided by sum_k weight(F_k) if `divide`."""
    ### BEGIN SOLUTION
    out = {}
    for n in networks[0]:
        weights = [weight(f[n]) for f in fishers]
        total = sum(w * net[n] for w, net in zip(weights, networks, strict=True))
        out[n] = total / sum(weights) if divide else total
    return out
    ### END SOLUTION


def merge_without_eps(networks, fishers):
    """A legitimate variant: no EPS, the same within tolerance where the Fishers are positive."""
    ### BEGIN SOLUTION
    return _weighted(networks, fishers, lambda f: f)
    ### END SOLUTION


def merge_one_at_a_time(networks, fishers):
    """A legitimate variant: networks merged one at a time, the Fisher of those merged so far accumulated."""
    ### BEGIN SOLUTION
    merged, total = dict(networks[0]), dict(fishers[0])
    for net, f in zip(networks[1:], fishers[1:], strict=True):
        merged = {n: (total[n] * merged[n] + f[n] * net[n]) / (total[n] + f[n]) for n in merged}
        total = {n: total[n] + f[n] for n in total}
    return merged
    ### END SOLUTION


def merge_mean(networks, fishers):
    ### BEGIN SOLUTION
    return {name: sum(net[name] for net in networks) / len(networks) for name in networks[0]}
    ### END SOLUTION


def merge_not_normalised(networks, fishers):
    ### BEGIN SOLUTION
    return _weighted(networks, fishers, lambda f: f, divide=False)
    ### END SOLUTION


def merge_divided_by_count(networks, fishers):
    ### BEGIN SOLUTION
    return {n: t / len(networks) for n, t in _weighted(networks, fishers, lambda f: f, divide=False).items()}
    ### END SOLUTION


def merge_alpha_above_only(networks, fishers):
    ### BEGIN SOLUTION
    return {n: t / len(networks) for n, t in _weighted(networks, fishers, lambda f: f).items()}
    ### END SOLUTION


def merge_fisher_squared(networks, fishers):
    ### BEGIN SOLUTION
    return _weighted(networks, fishers, lambda f: f ** 2)
    ### END SOLUTION


def merge_inverse_fisher(networks, fishers):
    ### BEGIN SOLUTION
    return _weighted(networks, fishers, lambda f: 1 / f)
    ### END SOLUTION


def merge_each_fisher_normalised(networks, fishers):
    ### BEGIN SOLUTION
    return _weighted(networks, fishers, lambda f: f / f.sum(), divide=False)
    ### END SOLUTION


def merge_pairwise(networks, fishers):
    ### BEGIN SOLUTION
    merged, last = dict(networks[0]), fishers[0]
    for net, f in zip(networks[1:], fishers[1:], strict=True):
        merged = {n: (last[n] * merged[n] + f[n] * net[n]) / (last[n] + f[n]) for n in merged}
        last = f  # the merge so far weighs as the latest network alone
    return merged
    ### END SOLUTION


# ---- task inference --------------------------------------------------------------------------


def _entropy(p):
    ### BEGIN SOLUTION
    return -(p * torch.log(p.clamp_min(1e-12))).sum(-1)
    ### END SOLUTION


def entropy_of_log_softmax(scores):
    """A legitimate variant: log p from log_softmax, which needs no clamp."""
    ### BEGIN SOLUTION
    entropy = -(F.softmax(scores, -1) * F.log_softmax(scores, -1)).sum(-1)
    return entropy.argmin(dim=0)
    ### END SOLUTION


def entropy_of_categorical(scores):
    """A legitimate variant: torch.distributions.Categorical's entropy."""
    ### BEGIN SOLUTION
    return torch.distributions.Categorical(logits=scores).entropy().argmin(0)
    ### END SOLUTION


def entropy_highest(scores):
    ### BEGIN SOLUTION
    return _entropy(F.softmax(scores, -1)).argmax(0)
    ### END SOLUTION


def entropy_of_logits(scores):
    ### BEGIN SOLUTION
    return _entropy(scores).argmin(0)
    ### END SOLUTION


def entropy_unclamped(scores):
    ### BEGIN SOLUTION
    p = F.softmax(scores, -1)
    entropy = -(p * torch.log(p)).sum(-1)
    return entropy.argmin(dim=0)
    ### END SOLUTION


def entropy_softmax_over_contexts(scores):
    ### BEGIN SOLUTION
    return _entropy(F.softmax(scores, 0)).argmin(0)
    ### END SOLUTION


def entropy_logits_as_log_probabilities(scores):
    ### BEGIN SOLUTION
    entropy = -(F.softmax(scores, -1) * scores).sum(-1)
    return entropy.argmin(dim=0)
    ### END SOLUTION


def entropy_largest_probability(scores):
    ### BEGIN SOLUTION
    return F.softmax(scores, -1).amax(-1).argmax(0)
    ### END SOLUTION


def entropy_largest_logit(scores):
    ### BEGIN SOLUTION
    return scores.amax(-1).argmax(0)
    ### END SOLUTION


def entropy_one_context_for_all(scores):
    ### BEGIN SOLUTION
    return _entropy(F.softmax(scores, -1)).mean(1).argmin().repeat(scores.shape[1])
    ### END SOLUTION
