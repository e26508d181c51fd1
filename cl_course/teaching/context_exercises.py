"""Lesson 3's blanks (context-specific components) on their fixture: the fixture, how each blank is called, and
what of its result is recorded.

Five of the six return a tensor or a list of them (a mask, a factor, a column's activations, the chosen contexts),
not a dict of parameters, so an exercise runs each and records its result as {entry: tensor}, the form the
self-checks and the grader compare; a result of another form is refused in one line that says which form is
expected. mode_merge returns {parameter name: tensor} itself and is compared as lesson 1's functions are.

The fixture (float64) is drawn from a seed (the published one: FIXTURE_SEED), its sizes fixed; see
context_fixture. Its numbers are chosen so that a right answer is unique and every typical mistake shows: no two
weights of the same magnitude, attentions strictly between 0 and 1, |s e| small enough for every exact form of
HAT's compensation, Fishers large against mode-IMM's EPS, a softmax probability that underflows to exactly 0.
"""
import torch

from ..model import MLP
from ..progressive import Column
from .exercises import AnswerFormError
from .fixtures import CLASSES, FIXTURE_SEED, HIDDEN, IN_FEATURES

OUT, IN = 6, 5          # prune_mask's layer, weight [6, 5]
FREE, SCARCE = 18, 3    # its free weights when plenty are free, and when fewer than `keep` are
KEEPS = (5, 6, 7)       # keep: more than SCARCE, and at most half of FREE, so that the largest and smallest differ
UNITS_OUT, UNITS_IN = 4, 5  # hat_gradient_mask's layer: not square, so that a transposed mask is a shape error
UNITS = 8               # compensation's embedding e
E_BOUND = 4.0           # |e| <= 4 and s <= 4: |s e| <= 16, where the sigmoid-slope form s(x) (1 - s(x)) is exact too
SCALES = (0.5, 2.5, 4.0)  # s: never 1, where an answer without s would pass
S_MAXES = (100.0, 200.0, 300.0, 500.0)  # never HAT's 400, so that an answer with 400 written in fails
COLUMN_SIZES = (6, 4, 4, 4)  # progressive columns: equal widths, so that reading another layer's activations runs
COLUMNS, SAMPLES = 3, 4      # the third column reads two earlier ones; x [4, 6]
NETWORKS = 3                 # mode_merge's task networks
CONTEXTS, N, SCORE_CLASSES = 3, 12, 4  # lowest_entropy's scores
SIZES = {  # each blank's fixture, for a message about a shape error
    "prune_mask": f"weight [{OUT}, {IN}], free [{OUT}, {IN}] bool, keep an int (it is also called with fewer free "
                  "weights than keep)",
    "hat_gradient_mask": f"a_out [{UNITS_OUT}], a_in [{UNITS_IN}]: the mask is [{UNITS_OUT}, {UNITS_IN}]",
    "compensation": f"e [{UNITS}], s and s_max numbers",
    "lateral_forward": f"columns of sizes {COLUMN_SIZES}, x [{SAMPLES}, {COLUMN_SIZES[0]}]; the third column reads two "
                       f"earlier ones: its adapter of layer i takes their layer i - 1, [{SAMPLES}, 2 x "
                       f"{COLUMN_SIZES[1]}]",
    "mode_merge": f"{NETWORKS} networks and their Fishers, each {{name: tensor}} shaped like the parameters of a "
                  f"{IN_FEATURES}-{'-'.join(map(str, HIDDEN))}-{CLASSES} MLP",
    "lowest_entropy": f"scores [{CONTEXTS}, {N}, {SCORE_CLASSES}] (contexts, samples, classes)",
}


def context_fixture(seed=FIXTURE_SEED):
    """Small float64 inputs of lesson 3's blanks, drawn from `seed` (the sizes are the same for every seed):

    weight: [6, 5], no two of the same magnitude; free: [6, 5] bool, 18 free, the weight of largest magnitude
    frozen and the free one of largest magnitude negative; scarce: [6, 5] bool, 3 free, the smallest weight among
    them; keep: 5, 6 or 7;
    a_out: [4], a_in: [5], attentions in (0, 1), neither all above the other;
    e: [8] in [-4, 4]; s: 0.5, 2.5 or 4; s_max: 100, 200, 300 or 500 (never 400, HAT's own);
    columns: 3 progressive Columns of sizes (6, 4, 4, 4), column k reading the k before it, alpha in [0.1, 0.5],
    the third column's first logit below 0 (its bias -30);
    x: [4, 6];
    networks, fishers: 3 {name: tensor} each, shaped like the parameters of a 6-5-4-3 MLP, the Fishers in
    [100, 1000] (so that mode_merge's EPS is below the checks' tolerance);
    scores: [3, 12, 4] logits; in sample 0 one context's logits are 800 apart, so that two of its probabilities are
    exactly 0, and another context is the more confident; in sample 1 the context of lowest entropy is not the one
    of the largest probability; in sample 2 the context of the largest logit is not the one of the largest mean
    logit under its softmax.
    """
    g = torch.Generator().manual_seed(seed)

    def randn(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    def rand(*shape):
        return torch.rand(*shape, generator=g, dtype=torch.float64)

    def pick(options):
        return options[int(torch.randint(len(options), (1,), generator=g))]

    return (pruning(randn, g) | attention(rand, g) | dict(keep=pick(KEEPS), e=(2 * rand(UNITS) - 1) * E_BOUND,
                                                          s=pick(SCALES), s_max=pick(S_MAXES))
            | columns(randn, rand) | merging(randn, rand) | dict(scores=scores(randn, g)))


def pruning(randn, g):
    """weight, free and scarce (see context_fixture)."""
    weight = randn(OUT, IN)
    order = weight.abs().flatten().argsort(descending=True)  # largest magnitude first
    others = order[1:-1][torch.randperm(len(order) - 2, generator=g)]  # neither the largest nor the smallest
    free = torch.ones(OUT * IN, dtype=torch.bool)
    free[torch.cat([order[:1], others[:OUT * IN - FREE - 1]])] = False  # the largest frozen: ignoring `free` shows
    largest_free = torch.where(free, weight.abs().flatten(), -1.0).argmax()
    weight.view(-1)[largest_free] = -weight.view(-1)[largest_free].abs()  # so that the signed largest differ
    scarce = torch.zeros(OUT * IN, dtype=torch.bool)
    scarce[torch.cat([order[-1:], others[-(SCARCE - 1):]])] = True  # the smallest: never among the layer's largest
    return dict(weight=weight, free=free.view(OUT, IN), scarce=scarce.view(OUT, IN))


def attention(rand, g):
    """a_out and a_in (see context_fixture): drawn alternately from sorted values, so that neither is all above the
    other (the smaller of two is then sometimes an output unit's, sometimes an input unit's)."""
    values = rand(UNITS_OUT + UNITS_IN).sort().values
    a_out, a_in = values[1::2], values[0::2]
    return dict(a_out=a_out[torch.randperm(UNITS_OUT, generator=g)], a_in=a_in[torch.randperm(UNITS_IN, generator=g)])


def columns(randn, rand):
    """columns and x (see context_fixture)."""
    made = [Column(COLUMN_SIZES, k).double() for k in range(COLUMNS)]
    with torch.no_grad():
        for column in made:
            for name, p in column.named_parameters():
                p.copy_(0.1 + 0.4 * rand(()) if name.endswith("alpha") else randn(*p.shape))
        made[-1].layers[-1].bias[0] = -30.0  # a logit below 0 whatever the draw: a ReLU on the logits shows
    return dict(columns=made, x=randn(SAMPLES, COLUMN_SIZES[0]))


def merging(randn, rand):
    """networks and fishers (see context_fixture)."""
    model = MLP(out_features=CLASSES, hidden=HIDDEN, in_features=IN_FEATURES)
    shapes = {n: p.shape for n, p in model.named_parameters()}
    # Fishers of 100 to 1000: EPS = 1e-8 moves the merge by less than 1e-9 even where it is near 0
    return dict(networks=[{n: randn(*s) for n, s in shapes.items()} for _ in range(NETWORKS)],
                fishers=[{n: 10 ** (2 + rand(*s)) for n, s in shapes.items()} for _ in range(NETWORKS)])


def scores(randn, g):
    """scores (see context_fixture): random logits, then samples 0 to 2 written out, their contexts in an order
    drawn from the seed."""
    out = 2 * randn(CONTEXTS, N, SCORE_CLASSES)
    designed = torch.tensor([
        [[6.0, 0.0, 0.0, 0.0], [800.0, 799.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]],  # 0 x log 0 in the second
        [[0.0, -0.405, -12.0, -12.0], [2.2, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]],  # lowest entropy, top p 0.6 < 0.75
        [[10.0, 9.0, 9.0, 9.0], [9.6, 9.6, 9.6, 9.7], [0.0, 2.0, 0.0, 0.0]],  # largest logit, largest E_p[logit]
    ], dtype=torch.float64)
    for sample, logits in enumerate(designed):
        out[:, sample] = logits[torch.randperm(CONTEXTS, generator=g)]
    return out


# ---- forms ------------------------------------------------------------------------------------

def described(value):
    """What an answer returned, in a few words."""
    if isinstance(value, torch.Tensor):
        return f"a {value.dtype} tensor of shape {list(value.shape)}"
    if isinstance(value, (list, tuple)):
        return f"a {type(value).__name__} of {len(value)}: " + ", ".join(described(v) for v in value[:4])
    return type(value).__name__


def broadcast(result, shape, what):
    """`result` as a float tensor of `shape`, broadcast as training's in-place multiplication broadcasts it."""
    if not isinstance(result, torch.Tensor) or not result.is_floating_point():
        raise AnswerFormError(f"must return a float tensor {what}, got {described(result)}")
    try:
        return torch.broadcast_to(result, shape).detach()
    except RuntimeError:
        raise AnswerFormError(f"must return {what}, got shape {list(result.shape)}") from None


# ---- prune_mask --------------------------------------------------------------------------------

def kept_mask(function, weight, free, keep):
    kept = function(weight, free, keep)
    if not isinstance(kept, torch.Tensor) or kept.dtype != torch.bool or kept.shape != weight.shape:
        raise AnswerFormError(f"must return a BoolTensor {list(weight.shape)} shaped like weight, True at the kept "
                              f"weights (indices will not do: PackNet indexes owner with it), got {described(kept)}")
    return kept


def kept_weights(function, inputs):
    """The mask of the weights kept when plenty are free (`kept`), and when fewer than `keep` are: which free ones
    it keeps (`kept_when_few_are_free`) and how many frozen ones (`frozen_kept_when_few_are_free`), a count, so that
    which frozen ones it takes, a tie among their placeholder magnitudes, does not matter."""
    weight, scarce, keep = inputs["weight"], inputs["scarce"], inputs["keep"]
    few = kept_mask(function, weight, scarce, keep)
    return {"kept": kept_mask(function, weight, inputs["free"], keep).double(),
            "kept_when_few_are_free": (few & scarce).double(),
            "frozen_kept_when_few_are_free": (few & ~scarce).sum().double().reshape(1)}


# ---- hat_gradient_mask and compensation ---------------------------------------------------------

def gradient_factors(function, inputs):
    """The mask [units_out, units_in], broadcast as weight.grad.mul_ would broadcast it."""
    a_out, a_in = inputs["a_out"], inputs["a_in"]
    shape = (len(a_out), len(a_in))
    return {"mask": broadcast(function(a_out, a_in), shape, f"[units_out, units_in] = {list(shape)}, rows the output "
                                                            "units as in the weight [out, in]")}


def embedding_factors(function, inputs):
    """The factor of every entry of e, [units]."""
    e = inputs["e"]
    return {"factor": broadcast(function(e, inputs["s"], inputs["s_max"]), e.shape,
                                f"[units] = {list(e.shape)}, one factor per entry of e")}


# ---- lateral_forward ----------------------------------------------------------------------------

def activations(function, column, x, earlier):
    out = function(column, x, earlier)
    shapes = [(len(x), layer.out_features) for layer in column.layers]
    if not isinstance(out, (list, tuple)) or [tuple(getattr(h, "shape", ())) for h in out] != shapes:
        raise AnswerFormError(f"must return a list of the column's activations of every layer, the logits last "
                              f"({len(shapes)} tensors of shapes {', '.join(map(str, map(list, shapes)))}: the next "
                              f"columns' laterals read them), got {described(out)}")
    return list(out)


def column_activations(function, inputs):
    """The third column's activations (`layer_1`, ..., `logits`), every column computed by `function` from the
    earlier ones' as Columns does, but with gradients on, so that the record says whether a gradient of the logits
    reaches an earlier column (`earlier_columns_get_gradient`: it must not) and every adapter parameter of the
    column's own, one flag per adapter (`adapters_get_gradient`: they must)."""
    made, x = inputs["columns"], inputs["x"]
    earlier = []
    for column in made:
        earlier.append(activations(function, column, x, earlier))
    own = earlier.pop()
    logits = own[-1]
    if not logits.requires_grad:
        raise AnswerFormError("returns logits that depend on none of the column's parameters (computed under "
                              "torch.no_grad(), or detached): the column could not train")

    def reached(parameters):
        grads = torch.autograd.grad(logits.sum(), list(parameters), allow_unused=True, retain_graph=True)
        return [g is not None for g in grads]

    earlier_reached = any(reached(p for column in made[:-1] for p in column.parameters()))
    adapters_reached = [all(reached(adapter.parameters())) for adapter in made[-1].laterals]
    return ({f"layer_{i}": h.detach() for i, h in enumerate(own[:-1], start=1)} | {"logits": logits.detach()}
            | {"earlier_columns_get_gradient": torch.tensor([float(earlier_reached)]),
               "adapters_get_gradient": torch.tensor(adapters_reached, dtype=torch.float64)})


# ---- lowest_entropy -----------------------------------------------------------------------------

def chosen_contexts(function, inputs):
    """The context chosen for every sample, [N]."""
    chosen = function(inputs["scores"])
    if not isinstance(chosen, torch.Tensor) or chosen.is_floating_point() or tuple(chosen.shape) != (N,):
        raise AnswerFormError(f"must return a LongTensor [N] = [{N}], the context (an index along dim 0 of scores) "
                              f"of every sample, got {described(chosen)}")
    return {"contexts": chosen.double()}


# What each recorded entry means, for a message that says it in words when no typical mistake matches
ENTRIES = {
    "prune_mask": {"kept": "which weights are kept (1) when more than keep are free: the keep largest |weight| among "
                           "the free ones",
                   "kept_when_few_are_free": "which free weights are kept when fewer than keep are free: all of them",
                   "frozen_kept_when_few_are_free": "how many frozen weights (not free) are kept when fewer than keep "
                                                    "are free: none"},
    "hat_gradient_mask": {"mask": "the factor of weight (i, j)'s gradient, 1 - min(a_out[i], a_in[j])"},
    "compensation": {"factor": "the factor of each embedding entry's gradient, s_max (cosh(s e) + 1) / (s (cosh(e) "
                               "+ 1))"},
    "lateral_forward": {f"layer_{i}": f"the third column's activations of layer {i}" for i in (1, 2)}
    | {"logits": "the third column's logits",
       "earlier_columns_get_gradient": "whether a gradient of the logits reaches an earlier column (it must not: they "
                                       "are frozen, read detached)",
       "adapters_get_gradient": "whether every parameter of each of the column's adapters (alpha, V, U) gets a "
                                "gradient (they must: they train)"},
    "lowest_entropy": {"contexts": "the context chosen for each sample"},
}


# ---- constant factors --------------------------------------------------------------------------

def compensation_factors(inputs):
    """What a compensation off by a constant factor says: (factor, meaning)."""
    s, s_max = inputs["s"], inputs["s_max"]
    values = f"s = {s:g}, s_max = {s_max:g}"
    return [(s, f"got = s x expected ({values}): the s in the denominator is missing"),
            (1 / s_max, f"got = expected / s_max ({values}): the factor s_max is missing"),
            (s / s_max, f"got = (s / s_max) x expected ({values}): only the slopes' ratio, the factor s_max / s is "
                        "missing"),
            ((s / s_max) ** 2, f"got = (s / s_max)^2 x expected ({values}): s and s_max are swapped")]


def merge_factors(inputs):
    """What a merge off by a constant factor says: (factor, meaning)."""
    k = len(inputs["networks"])
    return [(1 / k, f"got = expected / {k}, K = {k} the number of networks: alpha_k = 1/K is in the numerator only; "
                    "equal alphas cancel (leave them out, or put them in both sums)")]
