"""The self-checks' inputs: small float64 fixtures drawn from a seed (the published one uses
FIXTURE_SEED; the autograder draws hidden ones). Every fixture has the same sizes, below: only
the numbers change with the seed."""
import torch

from .. import importance
from ..model import MLP

FIXTURE_SEED = 2021
IN_FEATURES, HIDDEN, CLASSES = 6, (5, 4), 3  # the fixture's MLP: 6 -> 5 -> 4 -> 3 (not HW14's 784 -> ... -> 10)
# Three batches of unequal size, so that a mean over batches is not a mean over samples, and so that the factors
# a wrong normalisation leaves (N = 10, 1/N, N/3, 3, 1/3; N over 3 x the first or last batch's size, 2/3 and 5/3)
# differ from one another and from 2, 1/2, 4 and 1/4, which mean something else (MAS's (1/2)||f||^2, the
# penalty's lambda/2)
BATCH_SIZES = (5, 3, 2)
SLICES = 5  # SCP's random directions
SIZES = (f"x is [B, {IN_FEATURES}] (a {IN_FEATURES}-{'-'.join(map(str, HIDDEN))}-{CLASSES} MLP), {CLASSES} classes, "
         f"batches of {', '.join(map(str, BATCH_SIZES[:-1]))} and {BATCH_SIZES[-1]} (N = {sum(BATCH_SIZES)})")


def fixture(seed=FIXTURE_SEED):
    """Small float64 inputs for every checked function, drawn from `seed` (the published fixture
    uses FIXTURE_SEED). The sizes are the same for every seed, and are not HW14's:

    model: MLP 6 -> 5 -> 4 -> 3 (in_features 6, 3 classes), float64;
    batches: three batches of 5, 3 and 2 samples (N = 10), each (x [B, 6] float64, y [B] int64 in 0..2);
        the self-checks pass them as training does, as a one-shot iterable;
    directions: [5, 3] unit vectors (SCP's L = 5 slices of the 3 outputs);
    path_integral, gradients, penalty_gradients, before, after, delta, fisher: {parameter name: float64
        tensor shaped like the parameter} (fisher is positive, after - before is a small step);
    eps: 0.1.
    """
    g = torch.Generator().manual_seed(seed)
    model = MLP(out_features=CLASSES, hidden=HIDDEN, in_features=IN_FEATURES).double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64))

    def like_params(scale=1.0, positive=False):
        out = {n: scale * torch.randn(p.shape, generator=g, dtype=torch.float64) for n, p in model.named_parameters()}
        return {n: t.abs() for n, t in out.items()} if positive else out

    x = torch.randn(sum(BATCH_SIZES), IN_FEATURES, generator=g, dtype=torch.float64)
    y = torch.randint(0, CLASSES, (sum(BATCH_SIZES),), generator=g)
    before = like_params()
    inputs = dict(model=model, batches=list(zip(x.split(BATCH_SIZES), y.split(BATCH_SIZES), strict=True)),
                  directions=importance.random_directions(SLICES, CLASSES, g).double(),
                  path_integral=like_params(), gradients=like_params(),
                  before=before, after={n: t + 0.1 * torch.randn(t.shape, generator=g, dtype=t.dtype)
                                        for n, t in before.items()},
                  delta=like_params(0.5), fisher=like_params(positive=True), eps=0.1)
    inputs["penalty_gradients"] = like_params(0.5)  # drawn last: the other entries stay as they were
    return inputs
