"""The self-checks' inputs: small float64 fixtures drawn from a seed (the published one uses
FIXTURE_SEED; the autograder draws hidden ones)."""
import torch

from . import importance
from .model import MLP

FIXTURE_SEED = 2021


def fixture(seed=FIXTURE_SEED):
    """Small float64 inputs for every checked function (the published one uses FIXTURE_SEED).

    model: MLP 6 -> 5 -> 4 -> 3; batches: two batches (4 and 3 samples) of x [B, 6], y [B] in 0..2;
    directions: [5, 3] unit vectors; path_integral, gradients, before, after, delta, fisher:
    {parameter name: tensor like the parameter}; eps: 0.1.
    """
    g = torch.Generator().manual_seed(seed)
    model = MLP(out_features=3, hidden=(5, 4), in_features=6).double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64))

    def like_params(scale=1.0, positive=False):
        out = {n: scale * torch.randn(p.shape, generator=g, dtype=torch.float64) for n, p in model.named_parameters()}
        return {n: t.abs() for n, t in out.items()} if positive else out

    x = torch.randn(7, 6, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (7,), generator=g)
    before = like_params()
    return dict(model=model, batches=[(x[:4], y[:4]), (x[4:], y[4:])],
                directions=importance.random_directions(5, 3, g).double(),
                path_integral=like_params(), gradients=like_params(),
                before=before, after={n: t + 0.1 * torch.randn(t.shape, generator=g, dtype=t.dtype)
                                      for n, t in before.items()},
                delta=like_params(0.5), fisher=like_params(positive=True), eps=0.1)
