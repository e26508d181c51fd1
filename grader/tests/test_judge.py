"""The judge against independent computations: hand-written per-sample loops (not the library),
every typical wrong formula, damaged records, and agreement with the visible self-check."""
import copy
import math
import random

import pytest
import torch

from cl_course.teaching import selfcheck
from cl_course.teaching.blanks import BLANKS
from cl_course.strategies import Replay, Strategy
from grader.harness import probe_function, serialise
from grader.judge import ProbeRecord, check_one, hidden_seeds, judge, published_passes, reference
from grader.parts import Part

SEEDS = [selfcheck.FIXTURE_SEED, 11, 12, 13]


def probe(name, function, seeds=SEEDS):
    """What the harness records: the function's result on each fixture, serialised."""
    return {"results": [{"value": serialise(selfcheck.call(name, function, BLANKS[name].fixture(s)))}
                        for s in seeds]}


def part(name, points=3):
    return Part(f"check_{name}", points, "function", name)


def loop_gradients(model, scalar, retain_graph=False):
    return torch.autograd.grad(scalar, list(model.parameters()), retain_graph=retain_graph)


def brute_fisher(model, batches):
    names = [n for n, _ in model.named_parameters()]
    total, count = [0] * len(names), 0
    for x, y in batches:
        for i in range(len(x)):
            logp = torch.log_softmax(model(x[i:i + 1])[0], dim=-1)[y[i]]
            total = [t + g * g for t, g in zip(total, loop_gradients(model, -logp), strict=False)]
            count += 1
    return {n: t / count for n, t in zip(names, total, strict=False)}


def brute_mas(model, batches):
    names = [n for n, _ in model.named_parameters()]
    total, count = [0] * len(names), 0
    for x, _ in batches:
        for i in range(len(x)):
            out = model(x[i:i + 1])[0]
            total = [t + g.abs() for t, g in zip(total, loop_gradients(model, sum(o * o for o in out)), strict=False)]
            count += 1
    return {n: t / count for n, t in zip(names, total, strict=False)}


def brute_scp(model, batches, directions):
    names = [n for n, _ in model.named_parameters()]
    outputs = [model(x[i:i + 1])[0] for x, _ in batches for i in range(len(x))]
    phi = sum(outputs) / len(outputs)
    total = [0] * len(names)
    for xi in directions:
        slice_ = sum(a * b for a, b in zip(xi, phi, strict=False))
        total = [t + g * g for t, g in zip(total, loop_gradients(model, slice_, retain_graph=True), strict=False)]
    return {n: t / len(directions) for n, t in zip(names, total, strict=False)}


def brute_si_step(path_integral, gradients, penalty_gradients, before, after):
    out = {}
    for n in path_integral:  # element by element: the task loss's gradient times the step, subtracted
        flat = [w - (g - p) * (b - a) for w, g, p, a, b in zip(
            path_integral[n].flatten().tolist(), gradients[n].flatten().tolist(),
            penalty_gradients[n].flatten().tolist(), before[n].flatten().tolist(), after[n].flatten().tolist(),
            strict=True)]
        out[n] = torch.tensor(flat, dtype=torch.float64).reshape(path_integral[n].shape)
    return out


def brute_si(path_integral, delta, eps):
    return {n: path_integral[n] / (delta[n] * delta[n] + eps) for n in path_integral}


def brute_rwalk(path_integral, fisher, delta, eps):
    return {n: path_integral[n] / (fisher[n] * delta[n] * delta[n] / 2 + eps) for n in path_integral}


def brute_distillation(logits, teacher_logits, temperature):
    """Row by row: T^2 * -sum_c p_c log q_c with p = softmax(teacher / T), q = softmax(logits / T)."""
    total = 0
    for z, t in zip(logits, teacher_logits, strict=True):
        p = [math.exp(v / temperature) for v in t.tolist()]
        p = [v / sum(p) for v in p]
        log_norm = torch.logsumexp(z / temperature, 0)
        total = total - sum(pc * (z[c] / temperature - log_norm) for c, pc in enumerate(p))
    return total / len(logits) * temperature ** 2


class LoopLwF(Strategy):
    """LwF written out: a deep copy of the model at each task's end; the batch through each earlier head."""

    def __init__(self, temperature=2.0):
        super().__init__()
        self.temperature, self.old = temperature, None

    def after_task(self, model, tasks):
        self.old = copy.deepcopy(model)

    def replay(self, model, x, tasks):
        if self.old is None:
            return None
        rows, heads, targets = [], [], []
        for task in tasks[:-1]:
            for i in range(len(x)):
                rows.append(x[i])
                heads.append(task.head)
                targets.append(self.old(x[i:i + 1], task.head)[0].detach())
        return Replay(torch.stack(rows), torch.stack(targets), torch.tensor(heads), self.temperature)


class ListReplay(Strategy):
    """Experience replay with Python lists: per class, its samples in a random.shuffle order; every class cut to
    budget // classes after each task; random.sample to draw."""

    def __init__(self, budget=1000):
        super().__init__()
        self.budget, self.classes, self.rng = budget, [], random.Random(0)

    def after_task(self, model, tasks):
        task = tasks[-1]
        for label in sorted(set(task.y_train.tolist())):
            where = [i for i in range(len(task.y_train)) if task.y_train[i] == label]
            self.rng.shuffle(where)
            self.classes.append([(task.x_train[i], task.y_train[i], task.head) for i in where])
        share = self.budget // len(self.classes)
        self.classes = [kept[:share] for kept in self.classes]

    def sample(self, n):
        stored = [s for kept in self.classes for s in kept]
        drawn = self.rng.sample(stored, min(n, len(stored)))
        return (torch.stack([x for x, _, _ in drawn]), torch.stack([y for _, y, _ in drawn]),
                torch.tensor([h for _, _, h in drawn]))

    def replay(self, model, x, tasks):
        return Replay(*self.sample(len(x))) if self.classes else None


class LoopAGEM(ListReplay):
    """A-GEM on ListReplay's memory: the projection with dot products summed parameter by parameter."""

    def replay(self, model, x, tasks):
        return None

    def adjust_gradients(self, model, tasks):
        if not self.classes:
            return
        xs, ys, heads = self.sample(256)
        params = list(model.parameters())
        loss = torch.nn.functional.cross_entropy(model(xs, heads), ys)
        reference = torch.autograd.grad(loss, params, allow_unused=True)
        reference = [torch.zeros_like(p) if r is None else r for p, r in zip(params, reference, strict=True)]
        dot = sum((p.grad * r).sum() for p, r in zip(params, reference, strict=True))
        if dot < 0:
            norm = sum((r * r).sum() for r in reference)
            for p, r in zip(params, reference, strict=True):
                p.grad = p.grad - dot / norm * r


def brute_herding(features, m):
    """Herding with a loop over the candidates at every step."""
    f = [v / v.norm() for v in features]
    mu = sum(f) / len(f)
    chosen = []
    for k in range(1, m + 1):
        best = None
        for i in range(len(f)):
            if i in chosen:
                continue
            d = (mu - (sum(f[j] for j in chosen) + f[i]) / k).norm()
            if best is None or d < best[0]:
                best = (d, i)
        chosen.append(best[1])
    return torch.tensor(chosen)


def loop_reservoir(seen, n, budget, generator=None):
    """Algorithm R item by item with Python's random module: keep item s with probability budget / (s + 1)."""
    rng = random.Random(int(torch.randint(2 ** 31, (1,), generator=generator)))  # a new stream from the generator
    slots = []
    for s in range(seen, seen + n):
        j = s if s < budget else rng.randint(0, s)  # randint includes s: s + 1 values
        slots.append(j if j < budget else -1)
    return torch.tensor(slots)


def loop_prune(weight, free, keep):
    """Lesson 3's: the free weights ranked one by one by magnitude, the first `keep` of them."""
    flat, allowed = weight.flatten().tolist(), free.flatten().tolist()
    order = sorted((k for k in range(len(flat)) if allowed[k]), key=lambda k: -abs(flat[k]))
    kept = [False] * len(flat)
    for k in order[:keep]:
        kept[k] = True
    return torch.tensor(kept).view(weight.shape)


def loop_gradient_mask(a_out, a_in):
    return torch.tensor([[1.0 - min(float(o), float(i)) for i in a_in] for o in a_out], dtype=a_out.dtype)


def exp_compensation(e, s, s_max):
    """The factor written with exponentials, cosh(v) = (exp(v) + exp(-v)) / 2, s e clamped at 50 as the course's."""
    def cosh(v):
        return (math.exp(v) + math.exp(-v)) / 2
    return torch.tensor([s_max * (cosh(max(-50.0, min(50.0, s * v))) + 1) / (s * (cosh(v) + 1)) for v in e.tolist()],
                        dtype=e.dtype)


def written_out_column(column, x, earlier):
    """Each layer W h + b, plus from the second on U relu(V (alpha [the earlier columns' previous layer]) + c)."""
    h, out = x, []
    for i, layer in enumerate(column.layers):
        z = torch.nn.functional.linear(h, layer.weight, layer.bias)
        if i and column.laterals is not None:
            adapter = column.laterals[i - 1]
            read = torch.cat([previous[i - 1].detach() for previous in earlier], dim=1) * adapter.alpha
            z = z + torch.nn.functional.linear(torch.relu(torch.nn.functional.linear(read, adapter.project.weight,
                                                                                        adapter.project.bias)),
                                               adapter.out.weight)
        h = torch.relu(z) if i < len(column.layers) - 1 else z
        out.append(h)
    return out


def loop_merge(networks, fishers):
    merged = {}
    for name in networks[0]:
        values = torch.stack([net[name] for net in networks]).flatten(1).T.tolist()   # [entries, K]
        weights = torch.stack([f[name] for f in fishers]).flatten(1).T.tolist()
        merged[name] = torch.tensor([sum((f + 1e-8) * v for v, f in zip(vs, fs, strict=True))
                                     / sum(f + 1e-8 for f in fs) for vs, fs in zip(values, weights, strict=True)],
                                    dtype=networks[0][name].dtype).view(networks[0][name].shape)
    return merged


def loop_entropy(scores):
    chosen = []
    for n in range(scores.shape[1]):
        entropies = []
        for c in range(scores.shape[0]):
            log_p = torch.log_softmax(scores[c, n].double(), 0)
            entropies.append(float(-(log_p.exp() * log_p).nan_to_num().sum()))
        chosen.append(entropies.index(min(entropies)))
    return torch.tensor(chosen)


INDEPENDENT = {"fisher_diagonal": brute_fisher, "mas_importance": brute_mas, "scp_importance": brute_scp,
               "si_path_step": brute_si_step, "si_importance": brute_si, "rwalk_score": brute_rwalk,
               "distillation_loss": brute_distillation, "LwF": LoopLwF, "ExperienceReplay": ListReplay,
               "AGEM": LoopAGEM, "herding_selection": brute_herding,
               "reservoir_slots": loop_reservoir, "prune_mask": loop_prune,
               "hat_gradient_mask": loop_gradient_mask, "compensation": exp_compensation,
               "lateral_forward": written_out_column, "mode_merge": loop_merge, "lowest_entropy": loop_entropy}


@pytest.mark.parametrize("name", list(INDEPENDENT))
def test_an_independent_correct_answer_gets_full_marks(name):
    verdict = judge(part(name), probe(name, INDEPENDENT[name]), SEEDS)
    assert verdict.score == 3, verdict.message
    assert "3 of 3 hidden fixtures match" in verdict.message


@pytest.mark.parametrize("name, index", [(n, i) for n, b in BLANKS.items() for i in range(len(b.mistakes))])
def test_every_typical_wrong_formula_gets_nothing_and_is_named(name, index):
    wrong, message = BLANKS[name].mistakes[index]
    verdict = judge(part(name), probe(name, wrong), SEEDS)
    assert verdict.score == 0, f"{wrong.__name__} passed"
    assert message in verdict.message


@pytest.mark.parametrize("name, index", [(n, i) for n, b in BLANKS.items() for i in range(len(b.mistakes))])
def test_the_visible_self_check_and_the_hidden_test_agree_on_the_published_fixture(name, index):
    for function in (INDEPENDENT[name], BLANKS[name].mistakes[index][0]):
        try:
            visible = selfcheck.check(name, function, verbose=False)
        except selfcheck.SelfCheckError:
            visible = False
        record = ProbeRecord.parse(probe(name, function, [selfcheck.FIXTURE_SEED]), [selfcheck.FIXTURE_SEED])
        assert check_one(name, record.results[0], selfcheck.FIXTURE_SEED)[0] == visible


def test_float32_arithmetic_passes_and_a_sign_flip_does_not():
    f32 = lambda m, b: {n: t.float() for n, t in brute_fisher(m, b).items()}  # noqa: E731
    assert judge(part("fisher_diagonal"), probe("fisher_diagonal", f32), SEEDS).score == 3
    flipped = lambda *a: {n: -t for n, t in brute_si(*a).items()}  # noqa: E731
    verdict = judge(part("si_importance"), probe("si_importance", flipped), SEEDS)
    assert verdict.score == 0 and "off by the sign" in verdict.message


def test_partial_credit_is_the_fraction_of_hidden_fixtures_matched():
    def right_on_some(model, batches):  # right when the first weight is positive: a data-dependent bug
        fisher = brute_fisher(model, batches)
        return fisher if float(model.fc1.weight[0, 0].detach()) > 0 else {n: 2 * t for n, t in fisher.items()}
    first_weights = [BLANKS["fisher_diagonal"].fixture(s)["model"].fc1.weight[0, 0] for s in range(20, 40)]
    signs = [float(w.detach()) > 0 for w in first_weights]
    seeds = [selfcheck.FIXTURE_SEED] + [20 + i for i, s in enumerate(signs) if s][:2] \
        + [20 + i for i, s in enumerate(signs) if not s][:1]
    verdict = judge(part("fisher_diagonal"), probe("fisher_diagonal", right_on_some, seeds), seeds)
    assert verdict.score == 2.0 and "2 of 3 hidden fixtures" in verdict.message


def test_values_fitted_to_the_published_fixture_earn_nothing():
    inputs = {k: BLANKS["fisher_diagonal"].fixture()[k] for k in ("model", "batches")}
    published = {n: t.clone() for n, t in brute_fisher(**inputs).items()}
    verdict = judge(part("fisher_diagonal"), probe("fisher_diagonal", lambda m, b: published), SEEDS)
    assert verdict.score == 0 and "the published fixture matches" in verdict.message


@pytest.mark.parametrize("record, message", [
    ({"missing": "fisher_diagonal is not defined"}, "is not defined"),
    ({"results": []}, "damaged"),
    ("garbage", "damaged"),
    ({"results": [{"error": "RuntimeError: boom"}] * 4}, "raised RuntimeError: boom"),
    ({"results": [{"value": {"type": "list"}}] * 4}, "must return a dict"),
    ({"results": [{"value": {"dict": {}}}] * 4}, "has no entry 'fc1.weight'"),
    ({"results": [{"value": {"dict": {"fc1.weight": {"shape": [1], "data": [0.0]}}}}] * 4}, "has shape [1]"),
    ({"results": [{"value": {"dict": {"fc1.weight": {"type": "float"}}}}] * 4}, "is a float, not a tensor"),
    ({"results": [{"value": {"type": "li\x00st\n"}}] * 4}, "must return a dict"),  # forged: no class has that name
    ({"results": [{"value": {"dict": {"fc1.weight": {"type": "\x00"}}}}] * 4}, ", not a tensor"),
])
def test_damaged_or_wrong_records_get_zero_with_a_reason(record, message):
    verdict = judge(part("fisher_diagonal"), record, SEEDS)
    assert verdict.score == 0 and message in verdict.message


def test_nan_results_are_named():
    nan = lambda m, b: {n: torch.full_like(p, float("nan")) for n, p in m.named_parameters()}  # noqa: E731
    assert "NaN" in judge(part("fisher_diagonal"), probe("fisher_diagonal", nan), SEEDS).message


@pytest.mark.parametrize("function, message", [
    (lambda model, batches: {n: t / sum(len(x) for x, _ in batches) for n, t in brute_fisher(model, batches).items()},
     "fisher_diagonal iterates over `batches` twice; training passes them once, as a generator"),
    (lambda model, batches: [model(x.reshape(-1, 784)) for x, _ in batches],
     "fisher_diagonal fails on the fixture's sizes: x is [B, 6] (a 6-5-4-3 MLP), 3 classes, batches of 5, 3 and 2 "
     "(N = 10); do not hard-code 784 or 10"),
])
def test_the_probe_names_a_second_pass_over_batches_and_hard_coded_sizes(function, message):
    """The harness probes through selfcheck.call, which passes `batches` once, as training does."""
    record = probe_function({"fisher_diagonal": function}, "fisher_diagonal", SEEDS)
    verdict = judge(part("fisher_diagonal"), record, SEEDS)
    assert verdict.score == 0 and f"raised SelfCheckError: {message}" in verdict.message


def test_an_si_path_step_that_changes_after_in_place_scores_zero_and_is_told_so():
    """Its result alone is right on every fixture; training's next `before` would be wrong."""
    def in_place(path_integral, gradients, penalty_gradients, before, after):
        for n in path_integral:
            change = after[n].sub_(before[n])
            path_integral[n] = path_integral[n] - (gradients[n] - penalty_gradients[n]) * change
        return path_integral
    record = probe_function({"si_path_step": in_place}, "si_path_step", SEEDS)
    verdict = judge(part("si_path_step"), record, SEEDS)
    assert verdict.score == 0 and verdict.cause == "wrong"
    assert "raised SelfCheckError: si_path_step changes `after` in place (only path_integral may be updated in " \
           "place): the training code keeps these tensors" in verdict.message


def test_no_hidden_seed_lets_the_published_record_pass():
    """ExperienceReplay records a few counts: on some seeds the published fixture's reference record equals the
    hidden one's (checked here by torch.equal, apart from the judge). hidden_seeds draws past those seeds, the
    published seed and repeats, so a record copied from the published values matches no hidden fixture."""
    published = reference("ExperienceReplay", selfcheck.FIXTURE_SEED)
    alike = [s for s in range(1000, 1060) if all(torch.equal(reference("ExperienceReplay", s)[k], v)
                                                  for k, v in published.items())]
    assert alike and all(published_passes("ExperienceReplay", s) for s in alike)
    other, another = [s for s in range(1000, 1060) if s not in alike][:2]
    assert not published_passes("ExperienceReplay", other)
    drawn = iter([selfcheck.FIXTURE_SEED, alike[0], other, other, *alike[1:], another])
    assert hidden_seeds(["ExperienceReplay"], 2, draw=lambda bound: next(drawn)) == [other, another]
