"""The notebook's self-checks: stored values match the reference, every typical mistake is caught and
named, result-form errors get one line, and the notebook's own solutions pass."""
import json
import re
from pathlib import Path

import pytest
import torch

from cl_course import selfcheck
from grader.mistakes import MISTAKES
from grader.selfcheck_values import compute

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "hw14_lifelong_learning.ipynb"


def test_stored_values_are_the_reference_on_the_published_fixture():
    fresh, stored = compute(), selfcheck.stored_values()
    assert fresh.keys() == stored.keys() == selfcheck.CALLS.keys()
    for name in fresh:
        for n, v in fresh[name]["expected"].items():
            torch.testing.assert_close(torch.tensor(stored[name]["expected"][n]), torch.tensor(v), rtol=1e-12, atol=0)
        assert [m["message"] for m in stored[name]["mistakes"]] == [m for _, m in MISTAKES[name]]


@pytest.mark.parametrize("name", list(selfcheck.CALLS))
@pytest.mark.parametrize("seed", [None, 7])
def test_reference_passes(name, seed):
    assert selfcheck.check(name, selfcheck.REFERENCE[name], verbose=False, seed=seed)


@pytest.mark.parametrize("name,wrong,message", [(n, f, m) for n, ms in MISTAKES.items() for f, m in ms],
                         ids=[f.__name__ for ms in MISTAKES.values() for f, _ in ms])
def test_every_typical_mistake_fails_with_its_message(name, wrong, message):
    with pytest.raises(selfcheck.SelfCheckError, match=re.escape(message)):
        selfcheck.check(name, wrong, verbose=False)
    with pytest.raises(selfcheck.SelfCheckError):  # and on a hidden fixture too
        selfcheck.check(name, wrong, verbose=False, seed=11)


def test_mistakes_differ_from_the_answer_by_more_than_the_tolerance():
    inputs = selfcheck.fixture()
    for name, mistakes in MISTAKES.items():
        expected = selfcheck.call(name, selfcheck.REFERENCE[name], inputs)
        for wrong, _ in mistakes:
            got = selfcheck.call(name, wrong, inputs)
            gap = max(((got[n] - e).abs().max() / e.abs().max()).item() for n, e in expected.items())
            assert gap > 100 * selfcheck.RTOL, wrong.__name__


def test_a_scaled_answer_is_reported_as_a_constant_factor():
    def doubled(path_integral, delta, eps):
        return {n: 2 * v for n, v in selfcheck.REFERENCE["si_importance"](path_integral, delta, eps).items()}
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
    selfcheck.check("rwalk_score", selfcheck.REFERENCE["rwalk_score"])
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


def notebook_solutions():
    """The notebook's solution cells run in one namespace: independent code from the library's."""
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    namespace = {"torch": torch, "F": torch.nn.functional}
    for cell in cells:
        if cell.get("metadata", {}).get("nbgrader", {}).get("solution") and "def " in "".join(cell["source"]):
            exec("".join(cell["source"]), namespace)
    return namespace


@pytest.mark.parametrize("name", list(selfcheck.CALLS))
def test_the_notebooks_solutions_pass_their_checks(name):
    answer = notebook_solutions()[name]
    assert selfcheck.check(name, answer, verbose=False)
    assert selfcheck.check(name, answer, verbose=False, seed=3)
