"""Per-sample importances: cl_course's Linear-layer identity against a batch-size-1 loop computing
the same values (and torch.func.vmap for reference), on the HW14 MLP.

    python benchmarks/fisher.py [--samples 1000] [--device cpu]

empirical: mean_i (d log p(y_i|x_i)/d theta)^2 with the true labels.
exact:     mean_i sum_c p(c|x_i) (d log p(c|x_i)/d theta)^2, the expectation over all 10 classes.
"""
import argparse
import time

import torch
import torch.nn.functional as F
from torch.func import functional_call, grad, vmap

from cl_course.importance import fisher_diagonal
from cl_course.model import MLP
from cl_course.train import select_device


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def loop_fisher(model, x, y, exact):
    """One sample at a time; for `exact`, one backward per class as well."""
    params = list(model.parameters())
    total = [torch.zeros_like(p) for p in params]
    for i in range(len(x)):
        log_p = F.log_softmax(model(x[i:i + 1]), 1)[0]
        classes = range(len(log_p)) if exact else [int(y[i])]
        weights = log_p.detach().exp() if exact else None
        for k, c in enumerate(classes):
            grads = torch.autograd.grad(log_p[c], params, retain_graph=k < len(classes) - 1)
            for t, g in zip(total, grads, strict=False):
                t += (weights[c] if exact else 1.0) * g * g
    return {n: t / len(x) for (n, _), t in zip(model.named_parameters(), total, strict=False)}


def vmap_fisher(model, x, y, exact, chunk=250):
    params = {n: p.detach() for n, p in model.named_parameters()}

    def log_p(prm, xi, c):
        return F.log_softmax(functional_call(model, prm, (xi[None],)), 1)[0].gather(0, c.reshape(1))[0]

    per_sample_grad = vmap(grad(log_p), in_dims=(None, 0, 0))
    total = {n: torch.zeros_like(p) for n, p in params.items()}
    for xs, ys in zip(x.split(chunk), y.split(chunk), strict=False):
        probs = F.softmax(model(xs), 1).detach()
        for c in (range(probs.shape[1]) if exact else [None]):
            labels = ys if c is None else torch.full_like(ys, c)
            w = torch.ones(len(xs), device=x.device) if c is None else probs[:, c]
            for n, g in per_sample_grad(params, xs, labels).items():
                total[n] += torch.einsum("i,i...->...", w, g * g)
    return {n: t / len(x) for n, t in total.items()}


def timed(fn, device, repeats):
    best, out = float("inf"), None
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        out = fn()
        sync(device)
        best = min(best, time.perf_counter() - start)
    return best, out


def max_rel_diff(a, b):
    return max(((a[n] - b[n]).abs().max() / b[n].abs().max()).item() for n in a)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--repeats", type=int, default=3, help="best of this many runs for the fast methods")
    ap.add_argument("--no-vmap", action="store_true")
    args = ap.parse_args()
    device = select_device(args.device)
    torch.manual_seed(0)
    model = MLP().to(device)
    x = torch.randn(args.samples, 784, device=device)
    y = torch.randint(0, 10, (args.samples,), device=device)
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, HW14 MLP, "
          f"{args.samples} samples")
    for mode in ("empirical", "exact"):
        exact = mode == "exact"
        t_ours, ours = timed(lambda mode=mode: fisher_diagonal(model, [(x, y)], mode), device, args.repeats)
        t_loop, ref = timed(lambda exact=exact: loop_fisher(model, x, y, exact), device, 1)
        line = (f"{mode:9s} identity {t_ours:7.3f} s | batch-size-1 loop {t_loop:7.2f} s "
                f"({t_loop / t_ours:5.0f}x) | max rel diff {max_rel_diff(ours, ref):.1e}")
        if not args.no_vmap:
            t_vmap, v = timed(lambda exact=exact: vmap_fisher(model, x, y, exact), device, 1)
            line += f" | vmap {t_vmap:7.2f} s (rel diff {max_rel_diff(v, ref):.1e})"
        print(line)


if __name__ == "__main__":
    main()
