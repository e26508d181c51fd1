"""The notebook's self-checks: stored values match the reference, every typical mistake is caught and
named, result-form errors get one line, and the notebook's own solutions pass."""
import ast
import re
from pathlib import Path

import pytest
import torch

from cl_course.teaching import context_mistakes, mistakes, replay_mistakes, selfcheck
from cl_course.teaching.blanks import BLANKS
from cl_course.importance import si_path_step
from grader.release import student_source
from helpers import NOTEBOOKS
from grader.selfcheck_values import compute
from helpers import notebook_solutions


def test_stored_values_are_the_reference_on_the_published_fixture():
    fresh, stored = compute(), selfcheck.stored_values()
    assert fresh.keys() == stored.keys() == BLANKS.keys()
    for name in fresh:
        for n, v in fresh[name]["expected"].items():
            torch.testing.assert_close(torch.tensor(stored[name]["expected"][n]), torch.tensor(v), rtol=1e-12, atol=0)
        assert [m["message"] for m in stored[name]["mistakes"]] == [m for _, m in BLANKS[name].mistakes]


@pytest.mark.parametrize("name", list(BLANKS))
@pytest.mark.parametrize("seed", [None, 7])
def test_reference_passes(name, seed):
    assert selfcheck.check(name, BLANKS[name].reference, verbose=False, seed=seed)


@pytest.mark.parametrize("name,wrong,message", [(n, f, m) for n, b in BLANKS.items() for f, m in b.mistakes],
                         ids=[f.__name__ for b in BLANKS.values() for f, _ in b.mistakes])
def test_every_typical_mistake_fails_with_its_message(name, wrong, message):
    with pytest.raises(selfcheck.SelfCheckError, match=re.escape(message)):
        selfcheck.check(name, wrong, verbose=False)
    with pytest.raises(selfcheck.SelfCheckError):  # and on a hidden fixture too
        selfcheck.check(name, wrong, verbose=False, seed=11)


def test_the_student_edition_carries_none_of_the_typical_mistakes():
    """They are close to the answers: in the student wheel every function and method of mistakes.py,
    replay_mistakes.py and context_mistakes.py only raises (the release's leak check guards what is inside solution
    regions, not code left outside them)."""
    defined, functions = set(), []
    for source in (mistakes, replay_mistakes, context_mistakes):
        module = ast.parse(student_source(Path(source.__file__).read_text()))
        assert all(isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom, ast.Expr))
                   for node in module.body)
        defined |= {node.name for node in module.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
        functions += [node for node in ast.walk(module) if isinstance(node, ast.FunctionDef)]
    assert defined >= {wrong.__name__ for b in BLANKS.values() for wrong, _ in b.mistakes}
    for f in functions:
        code = [node for node in f.body if not isinstance(node, ast.Expr)]  # the docstring stays
        if f.name == "__init__":  # a buffer's empty fields, as the notebook's skeleton has them
            continue
        assert [type(node) for node in code] == [ast.Raise], f.name


def test_mistakes_differ_from_the_answer_by_more_than_the_tolerance():
    for name, blank in BLANKS.items():
        inputs = blank.fixture()
        expected = selfcheck.call(name, blank.reference, inputs)
        for wrong, _ in blank.mistakes:
            got = selfcheck.call(name, wrong, inputs)
            # relative to each entry's size; an entry that is all zeros (an exercise's count) counts absolutely
            gap = max(((got[n] - e).abs().max() / (e.abs().max() if e.abs().max() > 0 else 1)).item()
                      for n, e in expected.items())
            assert gap > 100 * selfcheck.RTOL, wrong.__name__


def test_a_scaled_answer_is_reported_as_a_constant_factor():
    def doubled(path_integral, delta, eps):
        return {n: 2 * v for n, v in BLANKS["si_importance"].reference(path_integral, delta, eps).items()}
    with pytest.raises(selfcheck.SelfCheckError, match=r"constant factor \(got = 2 x expected\)"):
        selfcheck.check("si_importance", doubled, verbose=False)


def test_float32_arithmetic_passes():
    def in_float32(path_integral, delta, eps):
        return {n: (w.float() / (delta[n].float() ** 2 + eps)) for n, w in path_integral.items()}
    assert selfcheck.check("si_importance", in_float32, verbose=False)


@pytest.mark.parametrize("result,message", [
    (None, "must return a dict"),
    ({}, "no entry 'fc1.weight'"),
    ("shape", "has shape"),
    ("nan", "NaN or inf"),
])
def test_result_form_errors_are_one_line(result, message):
    def answer(path_integral, delta, eps):
        if result == "shape":
            return {n: w.reshape(-1) for n, w in path_integral.items()}
        if result == "nan":
            return {n: w / 0 * 0 for n, w in path_integral.items()}
        return result
    with pytest.raises(selfcheck.SelfCheckError, match=message) as info:
        selfcheck.check("si_importance", answer, verbose=False)
    assert "\n" not in str(info.value)


def test_unwritten_answer_says_where_to_write_it():
    def stub(model, batches):
        raise NotImplementedError()
    with pytest.raises(NotImplementedError, match="fisher_diagonal is not written yet: fill in its cell above"):
        selfcheck.check("fisher_diagonal", stub)


def test_check_prints_expected_and_got(capsys):
    selfcheck.check("rwalk_score", BLANKS["rwalk_score"].reference)
    out = capsys.readouterr().out
    assert "expected" in out and "got" in out and "fc1.weight" in out and "all 6 parameters match" in out


def test_quiz_answer_check():
    assert selfcheck.check_answer({"q01": {"a", "c"}}, "q01", "abcd") == {"a", "c"}
    assert selfcheck.check_answer({"q01": "b"}, "q01", "abcd") == {"b"}
    with pytest.raises(NotImplementedError, match="q01 is not answered yet"):
        selfcheck.check_answer({}, "q01", "abcd")
    with pytest.raises(selfcheck.SelfCheckError, match="'z' is not an option"):
        selfcheck.check_answer({"q01": {"z"}}, "q01", "abcd")
    with pytest.raises(selfcheck.SelfCheckError, match="non-empty set"):
        selfcheck.check_answer({"q01": set()}, "q01", "abcd")


@pytest.mark.parametrize("name", [n for n, b in BLANKS.items() if b.lesson in NOTEBOOKS])  # notebooks written so far
def test_the_notebooks_solutions_pass_their_checks(name):
    answer = notebook_solutions()[name]
    assert selfcheck.check(name, answer, verbose=False)
    assert selfcheck.check(name, answer, verbose=False, seed=3)


def test_a_result_that_is_part_of_the_graph_is_named():
    def attached(model, batches):  # forgot .detach(): training would backpropagate into the importance
        return {n: p * 0 + 1 for n, p in model.named_parameters()}
    with pytest.raises(selfcheck.SelfCheckError, match=r"result\['fc1.weight'\] is still part of the autograd graph"):
        selfcheck.check("fisher_diagonal", attached, verbose=False)


def test_a_result_on_another_device_than_the_model_is_named():
    def elsewhere(model, batches):
        return {n: torch.zeros(p.shape, device="meta") for n, p in model.named_parameters()}
    with pytest.raises(selfcheck.SelfCheckError, match=r"result\['fc1.weight'\] is on meta but the model is on cpu: "
                                                       r"create tensors with torch.zeros_like\(p\)"):
        selfcheck.check("mas_importance", elsewhere, verbose=False)


def test_a_device_mismatch_inside_the_function_is_one_line():
    def cpu_only(model, batches):  # what torch raises on a GPU for torch.zeros(p.shape) += cuda_gradient
        raise RuntimeError("Expected all tensors to be on the same device, but found at least two devices, "
                           "cuda:0 and cpu!\nmore detail")
    with pytest.raises(selfcheck.SelfCheckError, match=r"fisher_diagonal failed on meta: Expected all tensors to be "
                                                       r"on the same device.*cpu! Tensors you create must live on"):
        selfcheck.check("fisher_diagonal", cpu_only, verbose=False, device="meta")
    with pytest.raises(RuntimeError, match="^Expected all"):  # on the CPU it is the student's own error
        selfcheck.check("fisher_diagonal", cpu_only, verbose=False)


def test_the_fixture_moves_to_a_device_whole():
    inputs = selfcheck.moved(selfcheck.fixture(), torch.device("meta"))
    assert next(inputs["model"].parameters()).device.type == "meta"
    assert all(x.device.type == "meta" and y.device.type == "meta" for x, y in inputs["batches"])
    assert inputs["batches"][0][1].dtype == torch.int64 and inputs["eps"] == 0.1
    assert all(t.device.type == "meta" for t in inputs["path_integral"].values())


@pytest.mark.parametrize("name,most", [("fisher_diagonal", 1), ("mas_importance", 1), ("scp_importance", 3)])
def test_the_notebooks_importances_do_not_loop_over_samples_or_slices(name, most, monkeypatch):
    """Backward passes per batch: one for the per-sample statistics, one per output (C = 3 here) for SCP,
    however many samples (7) and slices (5) the fixture has."""
    calls = []
    grad = torch.autograd.grad
    monkeypatch.setattr(torch.autograd, "grad", lambda *a, **k: calls.append(1) or grad(*a, **k))
    monkeypatch.setattr(torch.Tensor, "backward", lambda *a, **k: pytest.fail("backward() instead of autograd.grad"))
    assert selfcheck.check(name, notebook_solutions()[name], verbose=False)
    assert len(calls) <= most * 3  # the fixture has 3 batches


# ---- batches arrive once, as in training ---------------------------------------------------

def brute_fisher(model, batches):
    """The empirical Fisher, one sample at a time, counting the samples in the same loop."""
    params = dict(model.named_parameters())
    total, n = {k: torch.zeros_like(p) for k, p in params.items()}, 0
    for x, y in batches:
        for i in range(len(x)):
            grads = torch.autograd.grad(torch.nn.functional.cross_entropy(model(x[i:i + 1]), y[i:i + 1]),
                                        list(params.values()))
            total = {k: total[k] + g.detach() ** 2 for k, g in zip(params, grads, strict=True)}
            n += 1
    return {k: t / n for k, t in total.items()}


def test_batches_are_a_one_shot_iterable():
    batches = selfcheck.OneShotBatches(selfcheck.fixture()["batches"])
    assert [len(x) for x, _ in batches] == [5, 3, 2]
    assert list(batches) == [] and batches.passes == 2  # a spent generator yields nothing


def test_a_loop_that_counts_in_the_same_pass_passes():
    assert selfcheck.check("fisher_diagonal", brute_fisher, verbose=False)
    assert selfcheck.check("fisher_diagonal", lambda m, b: brute_fisher(m, iter(b)), verbose=False, seed=5)


@pytest.mark.parametrize("how", ["count first", "sum of zeros", "loop per direction"])
def test_iterating_over_batches_twice_is_named(how):
    message = "iterates over `batches` twice; training passes them once, as a generator: count the samples in " \
              "the same loop"

    def counts_first(model, batches):  # N first: the real loop then sees no batches, and divides 0 by 7
        n = sum(len(x) for x, _ in batches)
        return {k: v * 0 / n for k, v in brute_fisher(model, batches).items()} if how == "sum of zeros" else \
            {k: v / n for k, v in brute_fisher(model, batches).items()}

    def per_direction(model, batches, directions):  # a loop over batches inside the loop over slices
        total = {k: torch.zeros_like(p) for k, p in model.named_parameters()}
        for xi in directions:
            for x, _ in batches:
                total = {k: total[k] + g.detach() ** 2 for k, g in zip(
                    total, torch.autograd.grad(model(x).mean(0) @ xi, list(model.parameters())), strict=True)}
        return total

    name, function = ("scp_importance", per_direction) if how == "loop per direction" else \
        ("fisher_diagonal", counts_first)
    with pytest.raises(selfcheck.SelfCheckError, match=re.escape(f"{name} {message}")):
        selfcheck.check(name, function, verbose=False)
    with pytest.raises(selfcheck.SelfCheckError, match=re.escape(message)):  # the grader's probe calls this
        selfcheck.call(name, function, selfcheck.fixture(9))


def test_len_or_an_index_on_batches_is_named():
    for function in (lambda m, b: {k: v / len(b) for k, v in brute_fisher(m, b).items()},
                     lambda m, b: brute_fisher(m, [b[0]])):
        with pytest.raises(selfcheck.SelfCheckError, match=r"fisher_diagonal uses len\(\) or an index on `batches` "
                                                           r".*OneShotBatches.*as a generator"):
            selfcheck.check("fisher_diagonal", function, verbose=False)


# ---- the fixture's sizes -------------------------------------------------------------------

def test_the_fixture_has_the_sizes_its_docstring_states():
    inputs = selfcheck.fixture(123)
    shapes = [tuple(p.shape) for p in inputs["model"].parameters()]
    assert shapes == [(5, 6), (5,), (4, 5), (4,), (3, 4), (3,)]  # a 6-5-4-3 MLP
    assert [tuple(x.shape) for x, _ in inputs["batches"]] == [(5, 6), (3, 6), (2, 6)]
    assert all(y.dtype == torch.int64 and y.min() >= 0 and y.max() <= 2 for _, y in inputs["batches"])
    assert tuple(inputs["directions"].shape) == (5, 3)
    for key in ("path_integral", "gradients", "penalty_gradients", "before", "after", "delta", "fisher"):
        assert {n: tuple(t.shape) for n, t in inputs[key].items()} == dict(
            (n, tuple(p.shape)) for n, p in inputs["model"].named_parameters()), key
    assert all(t.abs().max() > 0 for t in inputs["penalty_gradients"].values())
    doc = " ".join(selfcheck.fixture.__doc__.split())
    assert "6 -> 5 -> 4 -> 3" in doc and "5, 3 and 2 samples (N = 10)" in doc and "x [B, 6]" in doc
    assert "3 classes" in doc


@pytest.mark.parametrize("name,function", [
    ("fisher_diagonal", lambda model, batches: [model(x.view(-1, 784)) for x, _ in batches]),
    ("mas_importance", lambda model, batches: [torch.zeros(len(x), 10) + model(x) for x, _ in batches]),
    ("fisher_diagonal", lambda model, batches: [torch.nn.functional.nll_loss(model(x), torch.full_like(y, 9))
                                                for x, y in batches]),
    ("si_importance", lambda path_integral, delta, eps: {n: w.reshape(784, -1) for n, w in path_integral.items()}),
])
def test_hard_coded_hw14_sizes_are_named(name, function):
    with pytest.raises(selfcheck.SelfCheckError, match=r"do not hard-code 784 or 10") as info:
        selfcheck.check(name, function, verbose=False)
    message = str(info.value)
    assert "\n" not in message and len(message) < 300  # the grader keeps 300 characters of an error
    if name != "si_importance":
        assert "x is [B, 6]" in message and "3 classes" in message and "batches of 5, 3 and 2 (N = 10)" in message
        assert "use x as given and the model's outputs" in message


def test_other_errors_are_the_students_own():
    def broken(model, batches):
        raise KeyError("fc9.weight")
    with pytest.raises(KeyError, match="fc9.weight"):
        selfcheck.check("fisher_diagonal", broken, verbose=False)


# ---- factors of N and of the number of batches ----------------------------------------------

@pytest.mark.parametrize("name,factor,message", [  # blanks whose tables name no such factor, so the counts do
    ("fisher_diagonal", 10, "divide by the number of samples (N)"),
    ("fisher_diagonal", 1 / 10, "divided by N once too often"),
    ("mas_importance", 10 / 3, "average over samples, not batches (divide by N = 10)"),
    ("fisher_diagonal", 3, "the number of batches: average over samples, not batches"),
    ("fisher_diagonal", 1 / 3, "1 / the number of batches: average over samples, not batches"),
    ("fisher_diagonal", 7, "off by a constant factor (got = 7 x expected)"),
    ("mas_importance", 10 / 15, "divided by 3 batches x 5 samples (the first batch's size) = 15, but the batches "
                                "differ in size (5, 3, 2 here): count the samples as you go (N = 10)"),
    ("fisher_diagonal", 10 / 6, "divided by 3 batches x 2 samples (the last batch's size) = 6"),
])
def test_a_factor_of_the_sample_or_batch_count_is_named(name, factor, message):
    def scaled(model, batches):
        return {k: factor * v for k, v in BLANKS[name].reference(model, batches).items()}
    with pytest.raises(selfcheck.SelfCheckError, match=re.escape(message)):
        selfcheck.check(name, scaled, verbose=False)


def test_the_fixtures_count_factors_are_told_apart_from_each_other_and_from_halves_and_quarters():
    """A factor of 2 or 1/2 (MAS's (1/2)||f||^2, the penalty's lambda/2 in the Fisher) or 4 must not be blamed
    on the batches: with N = 10 samples in 3 batches, N, 1/N, N/3, 3 and 1/3 are five other numbers."""
    counts = selfcheck.counts("fisher_diagonal", selfcheck.fixture())
    n, b = counts["samples"], counts["batches"]
    factors = [n, 1 / n, n / b, b, 1 / b, n / (b * counts["sizes"][0]), n / (b * counts["sizes"][-1])]
    assert len({round(f, 9) for f in factors + [2, 1 / 2, 4, 1 / 4]}) == len(factors) + 4
    for f in (2, 1 / 2, 4, 1 / 4):
        assert selfcheck.count_factor(f, counts) is None
    assert len({len(x) for x, _ in selfcheck.fixture()["batches"]}) == b  # unequal sizes


@pytest.mark.parametrize("name,factor,message", [
    ("mas_importance", 1 / 2, "differentiates (1/2)||f(x)||^2"),
    ("mas_importance", 1 / 3, "averages the squared outputs over the C outputs"),
    ("fisher_diagonal", 1 / 2, "the 1/2 belongs to the penalty"),
])
def test_a_half_or_a_third_that_means_something_is_named_as_such(name, factor, message):
    def scaled(*args):
        return {k: factor * v for k, v in BLANKS[name].reference(*args).items()}
    with pytest.raises(selfcheck.SelfCheckError, match=re.escape(message)) as info:
        selfcheck.check(name, scaled, verbose=False)
    assert "batches" not in str(info.value).split("Likely mistake")[1]


def test_likely_mistake_takes_the_counts_as_data():
    expected = {"w": torch.tensor([1.0, -2.0], dtype=torch.float64)}
    got = {"w": 5 * expected["w"]}
    assert "divide by the number of samples (N)" in selfcheck.likely_mistake(got, expected, [], {"samples": 5,
                                                                                                 "batches": 3})
    assert "constant factor (got = 5 x expected)" in selfcheck.likely_mistake(got, expected, [])  # no counts
    assert selfcheck.counts("fisher_diagonal", selfcheck.fixture()) == {"samples": 10, "batches": 3,
                                                                        "sizes": [5, 3, 2]}
    assert selfcheck.counts("si_importance", selfcheck.fixture()) is None


# ---- arguments changed in place ------------------------------------------------------------

def si_step_changing(argument):
    """A right si_path_step that computes its differences in place in `argument`'s tensors."""
    def step(path_integral, gradients, penalty_gradients, before, after):
        for n in path_integral:
            if argument == "after":
                change = after[n].sub_(before[n])  # after[n] is now the change
            elif argument == "before":
                change = -before[n].sub_(after[n])
            else:
                change = after[n] - before[n]
            if argument == "gradients":
                g = gradients[n].sub_(penalty_gradients[n])
            elif argument == "penalty_gradients":
                g = -penalty_gradients[n].sub_(gradients[n])
            else:
                g = gradients[n] - penalty_gradients[n]
            path_integral[n] = path_integral[n] - g * change
        return path_integral
    return step


@pytest.mark.parametrize("argument", ["after", "before", "gradients", "penalty_gradients"])
def test_si_path_step_that_changes_an_argument_in_place_is_refused_and_the_argument_named(argument):
    step = si_step_changing(argument)
    inputs = selfcheck.fixture()
    got = step(*(selfcheck.copy.deepcopy(inputs)[k] for k in BLANKS["si_path_step"].arguments))
    expected = BLANKS["si_path_step"].reference(*(selfcheck.copy.deepcopy(inputs)[k]
                                                   for k in BLANKS["si_path_step"].arguments))
    assert all(torch.allclose(got[n], expected[n]) for n in expected)  # its result alone is right
    message = f"si_path_step changes `{argument}` in place (only path_integral may be updated in place)"
    for seed in (None, 5):
        with pytest.raises(selfcheck.SelfCheckError, match=re.escape(message)) as info:
            selfcheck.check("si_path_step", step, verbose=False, seed=seed)
        assert "\n" not in str(info.value)
    with pytest.raises(selfcheck.SelfCheckError, match=re.escape(message)):  # the grader's probe calls this
        selfcheck.call("si_path_step", step, selfcheck.fixture(9))


def test_why_an_in_place_after_matters_two_chained_steps_go_wrong():
    """Training's next step starts where this one ended (after is the next before): an answer that turns
    `after` into the change corrupts W from the second step on, although its first step is right."""
    inputs = selfcheck.fixture()

    def two_steps(step):
        path = {n: torch.zeros_like(t) for n, t in inputs["before"].items()}
        start = {n: t.clone() for n, t in inputs["before"].items()}
        middle = {n: t.clone() for n, t in inputs["after"].items()}
        end = {n: 2 * middle[n] - start[n] for n in middle}  # a second step of the same size
        grads, zeros = inputs["gradients"], {n: torch.zeros_like(t) for n, t in start.items()}
        path = step(path, grads, zeros, start, middle)
        return step(path, grads, zeros, middle, end)  # training passes the same `middle` tensors on

    right, wrong = two_steps(si_path_step), two_steps(si_step_changing("after"))
    by_hand = {n: -2 * inputs["gradients"][n] * (inputs["after"][n] - inputs["before"][n]) for n in right}
    assert all(torch.allclose(right[n], by_hand[n]) for n in right)
    assert max((wrong[n] - right[n]).abs().max() for n in right) > 0.1


def test_path_integral_may_be_updated_in_place():
    def step(path_integral, gradients, penalty_gradients, before, after):
        for n, w in path_integral.items():
            w -= (gradients[n] - penalty_gradients[n]) * (after[n] - before[n])
        return path_integral
    assert selfcheck.check("si_path_step", step, verbose=False)
    assert "Only path_integral is updated in place" in " ".join(si_path_step.__doc__.split())


@pytest.mark.parametrize("name,change,argument", [
    ("fisher_diagonal", lambda model, batches: [p.data.mul_(2) for p in model.parameters()], "model"),
    ("mas_importance", lambda model, batches: [x.mul_(0.5) for x, _ in batches], "batches"),
    ("si_importance", lambda path_integral, delta, eps: [d.pow_(2) for d in delta.values()], "delta"),
    ("rwalk_score", lambda path_integral, fisher, delta, eps: [f.mul_(0.5) for f in fisher.values()], "fisher"),
])
def test_other_arguments_changed_in_place_are_named(name, change, argument):
    def answer(*args):
        expected = BLANKS[name].reference(*selfcheck.copy.deepcopy(args))
        change(*args)
        return expected
    with pytest.raises(selfcheck.SelfCheckError, match=re.escape(f"{name} changes `{argument}` in place: ")):
        selfcheck.check(name, answer, verbose=False)


# ---- the typical mistakes on hidden fixtures ------------------------------------------------

@pytest.mark.parametrize("name", [n for n, b in BLANKS.items() if b.lesson == "hw14"])
def test_lesson_1s_typical_mistakes_differ_from_the_answer_on_every_hidden_seed_tried(name):
    blank = BLANKS[name]
    for seed in range(1, 21):
        inputs = blank.fixture(seed)
        expected = selfcheck.result_values(name, blank.reference, inputs)
        for wrong, _ in blank.mistakes:
            got = selfcheck.result_values(name, wrong, inputs)
            assert not selfcheck.matches(got, expected), (wrong.__name__, seed)


@pytest.mark.parametrize("name", [n for n, b in BLANKS.items() if b.lesson == "hw14"])
def test_the_benchmarks_plain_loop_answers_pass_their_checks(name):
    """benchmarks/quick_profile.py --answers loop times the notebook with them: they must be right answers."""
    import importlib.util
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "loop_answers.py"
    spec = importlib.util.spec_from_file_location("loop_answers", path)
    loops = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loops)
    assert selfcheck.check(name, getattr(loops, name), verbose=False)
    assert selfcheck.check(name, getattr(loops, name), verbose=False, seed=8)
