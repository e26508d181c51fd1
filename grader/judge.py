"""Verdicts on function parts, in the grader's own process: what the student's code produced in the
sandbox against the reference in cl_course, on fixtures drawn from seeds made at grading time
(the sandbox holds no reference code, so knowing a seed does not give the answer).

A function part earns points x (hidden fixtures matched / hidden fixtures). The published fixture
is probed too, only to say when a result matches it but not the hidden ones.
"""
from functools import lru_cache

import torch

from cl_course import selfcheck

from .inert import one_line
from .mistakes import MISTAKES
from .verdict import Verdict


@lru_cache(maxsize=256)
def reference(name, seed):
    inputs = selfcheck.fixture(seed)
    return {n: t.detach().double() for n, t in selfcheck.call(name, selfcheck.REFERENCE[name], inputs).items()}


@lru_cache(maxsize=1024)
def mistake_values(name, index, seed):
    wrong, _ = MISTAKES[name][index]
    return {n: t.detach().double() for n, t in selfcheck.call(name, wrong, selfcheck.fixture(seed)).items()}


def tensors(name, value, expected):
    """{name: tensor} from a probe's record, or a one-line description of what is wrong with it."""
    if not isinstance(value, dict) or not isinstance(value.get("dict"), dict):
        kind = value.get("type", "something else") if isinstance(value, dict) else "something else"
        return f"{name} must return a dict {{parameter name: tensor}}, got {kind}"
    got = {}
    for n, e in expected.items():
        record = value["dict"].get(n)
        if record is None:
            return f"{name}'s result has no entry {n!r}: return one tensor per model.named_parameters()"
        if not isinstance(record, dict) or "shape" not in record:
            kind = record.get("type", "?") if isinstance(record, dict) else "?"
            return f"{name}'s result[{n!r}] is a {kind}, not a tensor"
        if tuple(record["shape"]) != tuple(e.shape):
            return f"{name}'s result[{n!r}] has shape {record['shape']}, expected {list(e.shape)} (the parameter's)"
        try:
            got[n] = torch.tensor(record["data"], dtype=torch.float64).reshape(e.shape)
        except (TypeError, ValueError, RuntimeError):
            return f"{name}'s result[{n!r}] could not be read"
        if not torch.isfinite(got[n]).all():
            return f"{name}'s result[{n!r}] holds NaN or inf"
    return got


def likely_mistake(name, got, seed):
    for i, (_, message) in enumerate(MISTAKES.get(name, [])):
        if selfcheck.matches(got, mistake_values(name, i, seed)):
            return message
    c = selfcheck.constant_factor(got, reference(name, seed))
    if c is not None:
        return "off by the sign" if abs(c + 1) < 1e-3 else f"off by a constant factor ({c:.4g} x expected)"
    return None


def check_one(name, result, seed):
    """(matched, why not) for one fixture's probe record."""
    if "error" in result:
        return False, f"raised {result['error']}"
    expected = reference(name, seed)
    got = tensors(name, result.get("value"), expected)
    if isinstance(got, str):
        return False, got
    if selfcheck.matches(got, expected):
        return True, None
    why = likely_mistake(name, got, seed)
    return False, "values differ from the reference" + (f"; likely mistake: {why}" if why else "")


def judge_function(part, probe, seeds):
    """seeds[0] is the published fixture, the rest are hidden; probe["results"] follows them."""
    if "missing" in probe:
        return Verdict(part.name, 0.0, "missing", one_line(probe["missing"]))
    results = probe.get("results")
    if not isinstance(results, list) or len(results) != len(seeds) or not all(isinstance(r, dict) for r in results):
        return Verdict(part.name, 0.0, "tampered", "the probe's record is damaged")
    checks = [check_one(part.name, r, s) for r, s in zip(results, seeds)]
    published, hidden = checks[0], checks[1:]
    passed = sum(ok for ok, _ in hidden)
    detail = ""
    if passed < len(hidden):
        detail = one_line(next(why for ok, why in hidden if not ok), 400)
        if published[0]:
            detail += "; the published fixture matches, so the result may be fitted to it"
    cause = "right" if passed == len(hidden) else "partial" if passed else "wrong"
    return Verdict(part.name, round(part.points * passed / len(hidden), 2), cause, detail, passed, len(hidden))


def judge(part, probe, seeds):
    """The Verdict on a function part from its probe's record (which the student's process wrote)."""
    if not isinstance(probe, dict):
        return Verdict(part.name, 0.0, "tampered", "the probe's record is damaged")
    return judge_function(part, probe, seeds)
