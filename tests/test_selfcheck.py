"""The notebook's self-checks: stored values match the reference, every typical mistake is caught and
named, result-form errors get one line, and the notebook's own solutions pass."""
import ast
import re
from pathlib import Path

import pytest
import torch

from cl_course import mistakes, selfcheck
from cl_course.blanks import BLANKS
from grader.release import student_source
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
    """They are close to the answers: in the student wheel every function of mistakes.py only raises
    (the release's leak check guards what is inside solution regions, not code left outside them)."""
    module = ast.parse(student_source(Path(mistakes.__file__).read_text()))
    functions = [node for node in module.body if isinstance(node, ast.FunctionDef)]
    assert {f.name for f in functions} >= {wrong.__name__ for b in BLANKS.values() for wrong, _ in b.mistakes}
    assert all(isinstance(node, (ast.FunctionDef, ast.Import, ast.ImportFrom, ast.Expr)) for node in module.body)
    for f in functions:
        code = [node for node in f.body if not isinstance(node, ast.Expr)]  # the docstring stays
        assert [type(node) for node in code] == [ast.Raise], f.name


def test_mistakes_differ_from_the_answer_by_more_than_the_tolerance():
    for name, blank in BLANKS.items():
        inputs = blank.fixture()
        expected = selfcheck.call(name, blank.reference, inputs)
        for wrong, _ in blank.mistakes:
            got = selfcheck.call(name, wrong, inputs)
            gap = max(((got[n] - e).abs().max() / e.abs().max()).item() for n, e in expected.items())
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


@pytest.mark.parametrize("name", list(BLANKS))
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
    assert len(calls) <= most * 2  # the fixture has 2 batches
