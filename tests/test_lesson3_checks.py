"""Lesson 3's self-checks (context-specific components) as a student meets them: every typical mistake is rejected
and named on the published fixture and on hidden ones, legitimate variants pass, a result of the wrong form or an
argument changed in place gets one line that says so; every reference agrees with an independent computation (a
loop over the entries, or a case worked by hand); and each strategy trains with the answers it is given."""
import math

import pytest
import torch

from cl_course import context, hat, imm, packnet, progressive
from cl_course.hat import HAT
from cl_course.imm import IMM
from cl_course.packnet import PackNet
from cl_course.progressive import ProgressiveNetworks
from cl_course.teaching import context_exercises as cx
from cl_course.teaching import selfcheck
from cl_course.teaching.blanks import BLANKS, lesson_blanks
from cl_course.train import fit

from helpers import judged, random_tasks, rejected_with, small_mlp

LESSON3 = lesson_blanks("lesson3")
HIDDEN = range(1, 14)  # the grader's tests use 11 to 13 too
SEEDS = [None, *HIDDEN]


@pytest.mark.parametrize("name,wrong,message", [(n, f, m) for n, b in LESSON3.items() for f, m in b.mistakes],
                         ids=[f.__name__ for b in LESSON3.values() for f, _ in b.mistakes])
def test_every_typical_mistake_is_rejected_and_named_on_hidden_fixtures_too(name, wrong, message):
    assert message in rejected_with(name, wrong)
    for seed in HIDDEN:
        wrong_entries, hint = judged(name, wrong, seed)
        assert wrong_entries and message in hint, (wrong.__name__, seed, hint)


@pytest.mark.parametrize("name", list(LESSON3))
def test_the_reference_passes(name):
    for seed in SEEDS:
        assert selfcheck.check(name, BLANKS[name].reference, verbose=False, seed=seed)


@pytest.mark.parametrize("name,variant", [(n, v) for n, b in LESSON3.items() for v, _ in b.variants])
def test_legitimate_variants_pass(name, variant):
    for seed in SEEDS:
        assert selfcheck.check(name, variant, verbose=False, seed=seed)


def test_every_blank_has_at_least_eight_typical_mistakes_and_a_variant():
    assert list(LESSON3) == ["prune_mask", "hat_gradient_mask", "compensation", "lateral_forward", "mode_merge",
                             "lowest_entropy"]
    assert all(len(b.mistakes) >= 8 and b.variants for b in LESSON3.values())


# ---- the references against independent computations --------------------------------------------------------------

def brute_prune(weight, free, keep):
    """The `keep` free weights of largest magnitude, from a sorted list of the free ones."""
    rows, columns = weight.shape
    ranked = sorted(((abs(float(weight[i, j])), i, j) for i in range(rows) for j in range(columns) if free[i, j]),
                    reverse=True)
    kept = torch.zeros(rows, columns, dtype=torch.bool)
    for _, i, j in ranked[:keep]:
        kept[i, j] = True
    return kept


def test_prune_mask_keeps_the_largest_free_weights_by_hand_and_by_a_sorted_list():
    weight = torch.tensor([[0.5, -3.0, 1.0], [2.0, -0.1, 4.0]])
    free = torch.tensor([[True, True, True], [True, True, False]])  # 4.0, the largest, is frozen
    assert packnet.prune_mask(weight, free, 2).tolist() == [[False, True, False], [True, False, False]]
    assert packnet.prune_mask(weight, free, 9).tolist() == free.tolist()  # fewer free than keep: all of them
    assert not packnet.prune_mask(weight, free, 0).any()
    for seed in range(20):
        inputs = cx.context_fixture(seed)
        for mask in ("free", "scarce"):
            assert torch.equal(packnet.prune_mask(inputs["weight"], inputs[mask], inputs["keep"]),
                               brute_prune(inputs["weight"], inputs[mask], inputs["keep"])), (seed, mask)


def test_hat_gradient_mask_by_hand_and_entry_by_entry():
    a_out, a_in = torch.tensor([0.2, 0.9]), torch.tensor([0.5, 1.0, 0.0])
    torch.testing.assert_close(hat.hat_gradient_mask(a_out, a_in), torch.tensor([[0.8, 0.8, 1.0], [0.5, 0.1, 1.0]]))
    inputs = cx.context_fixture(3)
    a_out, a_in = inputs["a_out"], inputs["a_in"]
    by_entry = torch.tensor([[1 - min(float(o), float(i)) for i in a_in] for o in a_out], dtype=torch.float64)
    torch.testing.assert_close(hat.hat_gradient_mask(a_out, a_in), by_entry, rtol=0, atol=1e-15)


def test_compensation_entry_by_entry_and_clamped_where_the_cosh_would_overflow():
    for seed in range(5):
        inputs = cx.context_fixture(seed)
        s, s_max = inputs["s"], inputs["s_max"]
        by_entry = [s_max * (math.cosh(s * v) + 1) / (s * (math.cosh(v) + 1)) for v in inputs["e"].tolist()]
        torch.testing.assert_close(hat.compensation(inputs["e"], s, s_max),
                                   torch.tensor(by_entry, dtype=torch.float64), rtol=1e-12, atol=0)
    far = hat.compensation(torch.tensor([6.0], dtype=torch.float64), 400.0, 400.0)  # s e = 2400: cosh(2400) is inf
    torch.testing.assert_close(far, torch.tensor([(math.cosh(50.0) + 1) / (math.cosh(6.0) + 1)], dtype=torch.float64))


def columns_by_hand(columns, x):
    """The last column's activations, every column written out from the input up:
    h_i = relu(W_i h_{i-1} + b_i + U_i relu(V_i (alpha_i [h_{i-1} of the earlier columns]) + c_i)), from the second
    layer on, the logits without the ReLU."""
    every = []
    for k, column in enumerate(columns):
        h, mine = x, []
        for i, layer in enumerate(column.layers):
            z = h @ layer.weight.T + layer.bias
            if k and i:
                adapter = column.laterals[i - 1]
                earlier = adapter.alpha * torch.cat([every[j][i - 1] for j in range(k)], 1)
                z = z + torch.relu(earlier @ adapter.project.weight.T + adapter.project.bias) @ adapter.out.weight.T
            h = z if i == len(column.layers) - 1 else torch.relu(z)
            mine.append(h)
        every.append(mine)
    return every[-1]


def test_lateral_forward_layer_by_layer_and_only_the_columns_own_parameters_learn():
    for seed in range(5):
        inputs = cx.context_fixture(seed)
        record = cx.column_activations(progressive.lateral_forward, inputs)
        with torch.no_grad():
            h1, h2, logits = columns_by_hand(inputs["columns"], inputs["x"])
        torch.testing.assert_close([record["layer_1"], record["layer_2"], record["logits"]], [h1, h2, logits])
        assert record["earlier_columns_get_gradient"].item() == 0  # read detached, however they were computed
        assert record["adapters_get_gradient"].tolist() == [1.0, 1.0]


def test_mode_merge_by_hand_and_entry_by_entry():
    networks = [{"w": torch.tensor([1.0, 2.0])}, {"w": torch.tensor([3.0, 6.0])}, {"w": torch.tensor([5.0, 7.0])}]
    fishers = [{"w": torch.tensor([1.0, 0.0])}, {"w": torch.tensor([3.0, 0.0])}, {"w": torch.tensor([0.0, 0.0])}]
    # (1 x 1 + 3 x 3 + 0 x 5) / 4; where every Fisher is 0 the EPS alone weighs: the mean (2 + 6 + 7) / 3
    torch.testing.assert_close(imm.mode_merge(networks, fishers)["w"], torch.tensor([2.5, 5.0]))
    inputs = cx.context_fixture(4)
    merged = imm.mode_merge(inputs["networks"], inputs["fishers"])
    for name, t in merged.items():
        entries = zip(*[net[name].flatten().tolist() for net in inputs["networks"]], strict=True)
        weights = zip(*[f[name].flatten().tolist() for f in inputs["fishers"]], strict=True)
        by_entry = [sum((f + imm.EPS) * v for v, f in zip(vs, fs, strict=True)) / sum(f + imm.EPS for f in fs)
                    for vs, fs in zip(entries, weights, strict=True)]
        torch.testing.assert_close(t.flatten(), torch.tensor(by_entry, dtype=torch.float64), rtol=1e-12, atol=1e-15)
    mode_imm = imm.merged(inputs["networks"], inputs["fishers"])  # mode-IMM's merge is mode_merge's
    assert all(torch.equal(mode_imm[n], t) for n, t in merged.items())


def entropy_by_hand(logits):
    """-sum p log p of softmax(logits), the terms of probability 0 left out (p log p -> 0)."""
    top = max(logits)
    weights = [math.exp(v - top) for v in logits]
    total = sum(weights)
    return -sum(w / total * math.log(w / total) for w in weights if w > 0)


def test_lowest_entropy_by_hand_and_sample_by_sample():
    scores = torch.tensor([[[5.0, 0.0, 0.0], [0.0, 0.0, 0.0]], [[900.0, 0.0, 0.0], [1.0, 0.0, 0.0]]])
    assert context.lowest_entropy(scores).tolist() == [1, 1]  # a probability of exactly 1 (0 entropy) wins
    for seed in range(5):
        scores = cx.context_fixture(seed)["scores"]
        by_hand = [min(range(cx.CONTEXTS), key=lambda c, i=i: entropy_by_hand(scores[c, i].tolist()))
                   for i in range(cx.N)]
        assert context.lowest_entropy(scores).tolist() == by_hand


# ---- the fixture --------------------------------------------------------------------------------------------------

def test_the_fixture_shows_every_typical_mistake_and_has_one_right_answer():
    for seed in range(30):
        f = cx.context_fixture(seed)
        magnitude = f["weight"].abs().flatten()
        assert len(set(magnitude.tolist())) == magnitude.numel()  # no ties: the kept weights are unique
        assert not f["free"].flatten()[magnitude.argmax()]  # the largest is frozen
        assert f["weight"][f["free"]][f["weight"].abs()[f["free"]].argmax()] < 0  # the largest free is negative
        assert int(f["scarce"].sum()) < f["keep"] < int(f["free"].sum()) / 2
        assert f["a_out"].min() > f["a_in"].min() and f["a_out"].max() < f["a_in"].max()
        assert (f["s"] * f["e"]).abs().max() <= 16 and f["s"] != 1 and f["s_max"] != hat.S_MAX
        assert all((t >= 100).all() for fisher in f["fishers"] for t in fisher.values())
        assert (torch.softmax(f["scores"][:, 0], -1) == 0).any()  # 0 x log 0 in sample 0
        assert [tuple(layer.out_features for layer in c.layers) for c in f["columns"]] == [(4, 4, 4)] * 3
    assert cx.context_fixture(5)["weight"].equal(cx.context_fixture(5)["weight"])


# ---- forms, arguments changed in place, and messages --------------------------------------------------------------

def weight_made_absolute(weight, free, keep):
    weight.abs_()
    return packnet.prune_mask(weight, free, keep)


def embedding_scaled_in_place(e, s, s_max):
    scaled = e.mul_(s)
    return s_max * (torch.cosh(scaled) + 1) / (s * (torch.cosh(scaled / s) + 1))


def nothing_learns(column, x, earlier):
    with torch.no_grad():
        return progressive.lateral_forward(column, x, earlier)


def last_earlier_column_only(column, x, earlier):
    return progressive.lateral_forward(column, x, earlier[-1:])


@pytest.mark.parametrize("name,answer,words", [
    ("prune_mask", lambda weight, free, keep: packnet.prune_mask(weight, free, keep).nonzero(),
     "prune_mask must return a BoolTensor [6, 5] shaped like weight"),
    ("prune_mask", lambda weight, free, keep: packnet.prune_mask(weight, free, keep).double(), "got a torch.float64"),
    ("prune_mask", weight_made_absolute, "prune_mask changes `weight` in place: PackNet passes the layer's weights"),
    ("hat_gradient_mask", lambda a_out, a_in: hat.hat_gradient_mask(a_out, a_in).T,
     "must return [units_out, units_in] = [4, 5], rows the output units as in the weight [out, in], got shape [5, 4]"),
    ("compensation", embedding_scaled_in_place, "compensation changes `e` in place: HAT passes its embedding's"),
    ("lateral_forward", lambda column, x, earlier: progressive.lateral_forward(column, x, earlier)[-1],
     "must return a list of the column's activations of every layer, the logits last"),
    ("lateral_forward", nothing_learns, "the column could not train"),
    ("lateral_forward", last_earlier_column_only, "fails on the fixture's sizes: columns of sizes (6, 4, 4, 4)"),
    ("lowest_entropy", lambda scores: context.lowest_entropy(scores).double(), "must return a LongTensor [N] = [12]"),
])
def test_a_result_of_the_wrong_form_or_an_argument_changed_is_one_line_that_says_so(name, answer, words):
    assert words in rejected_with(name, answer)


def test_a_difference_no_typical_mistake_explains_is_said_in_words():
    message = rejected_with("hat_gradient_mask", lambda a_out, a_in: hat.hat_gradient_mask(a_out, a_in) + 0.01)
    assert "mask is the factor of weight (i, j)'s gradient, 1 - min(a_out[i], a_in[j]): expected" in message


def test_a_compensation_off_by_a_factor_is_named_on_a_hidden_fixture_too():
    """The notebook's hidden check has no typical mistakes (the student edition carries none): the factor names it."""
    inputs = cx.context_fixture(5)
    message = rejected_with("compensation", lambda e, s, s_max: s * hat.compensation(e, s, s_max), seed=5)
    assert f"got = s x expected (s = {inputs['s']:g}, s_max = {inputs['s_max']:g})" in message
    assert "expected / 3, K = 3 the number of networks" in rejected_with(
        "mode_merge", lambda networks, fishers: {n: t / 3 for n, t in imm.mode_merge(networks, fishers).items()},
        seed=5)


# ---- the strategies train with the answers they are given ---------------------------------------------------------

@pytest.mark.parametrize("make,names,heads", [
    (lambda answers: PackNet(share=0.3, lr=1e-2, retrain=5, answers=answers), ("prune_mask",), True),
    (lambda answers: HAT(batch_size=20, answers=answers), ("hat_gradient_mask", "compensation"), True),
    (lambda answers: ProgressiveNetworks(answers=answers), ("lateral_forward",), True),
    (lambda answers: IMM(mode=True, batch_size=16, answers=answers), ("mode_merge",), False),
], ids=["packnet", "hat", "progressive", "imm-mode"])
def test_each_strategy_calls_the_answers_it_is_given_and_trains_as_with_the_librarys(make, names, heads):
    calls = []

    def counted(name):
        def answer(*args):
            calls.append(name)
            return BLANKS[name].reference(*args)
        return answer

    runs = []
    for answers in (None, {n: counted(n) for n in names}):
        history = fit(small_mlp(3 if heads else 1), random_tasks(3, heads=heads), make(answers), epochs=2,
                      batch_size=20, lr=1e-2, progress=False, generator=torch.Generator().manual_seed(0))
        runs.append(history.epoch_accuracy)
    assert runs[0] == runs[1] and set(calls) == set(names)
