"""Verdicts on function parts, in the grader's own process: what the student's code produced in the
sandbox against the reference in cl_course, on fixtures drawn from seeds made at grading time
(the sandbox holds no reference code, so knowing a seed does not give the answer).

A function part earns points x (hidden fixtures matched / hidden fixtures). The published fixture
is probed too, only to say when a result matches it but not the hidden ones.
"""
from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import torch

from cl_course.teaching import selfcheck
from cl_course.teaching.blanks import BLANKS

from .inert import one_line
from .verdict import Verdict

if TYPE_CHECKING:
    from .parts import Part

Values = dict[str, torch.Tensor]  # a result as selfcheck compares it: {parameter or entry name: float64 tensor}


@lru_cache(maxsize=256)
def reference(name: str, seed: int) -> Values:
    blank = BLANKS[name]
    return selfcheck.result_values(name, blank.reference, blank.fixture(seed))


@lru_cache(maxsize=256)
def variant_values(name: str, seed: int) -> list[Values]:
    """The values of the blank's legitimate variants on the fixture drawn from `seed`: right answers too."""
    blank = BLANKS[name]
    return [selfcheck.result_values(name, variant, blank.fixture(seed)) for variant, _ in blank.variants]


@lru_cache(maxsize=256)
def mistake_values(name: str, seed: int) -> list[tuple[str, Values]]:
    """[(message, values)] of the blank's typical mistakes on the fixture drawn from `seed`."""
    blank = BLANKS[name]
    inputs = blank.fixture(seed)
    return [(message, selfcheck.result_values(name, wrong, inputs)) for wrong, message in blank.mistakes]


@dataclass(frozen=True)
class FixtureResult:
    """What the student's function did on one fixture, as its probe recorded it."""
    error: str | None   # what it raised, or None
    value: object       # what it returned, as the probe wrote it (rebuilt by `recorded`)


@dataclass(frozen=True)
class ProbeRecord:
    """A function part's probe record: the part was not defined (`missing`), or one result per fixture seed."""
    missing: str | None
    results: tuple[FixtureResult, ...]  # FixtureResult per seed, in the seeds' order

    @classmethod
    def parse(cls, raw: object, seeds: Sequence[int]) -> ProbeRecord | None:
        """The record from what the student's process sent, or None where it is not of that shape."""
        if not isinstance(raw, dict):
            return None
        if "missing" in raw:
            return cls(one_line(raw["missing"]), ())
        results = raw.get("results")
        if not isinstance(results, list) or len(results) != len(seeds) or not all(isinstance(r, dict) for r in results):
            return None
        return cls(None, tuple(FixtureResult(str(r["error"]) if "error" in r else None, r.get("value"))
                               for r in results))


def recorded(value: object) -> object:
    """The result the probe recorded, rebuilt: {name: tensor} where it recorded tensors, and for anything
    else an empty object of a class named as the recorded type, so that selfcheck's own form check
    (the one the notebook runs) names it."""
    def stand_in(record: object) -> object:
        # the record comes from the student's process: a class name may hold no NUL, and one line reads best
        kind = one_line(record.get("type", ""), 100) if isinstance(record, dict) else ""
        return type(kind or "object", (), {})()

    if not isinstance(value, dict) or not isinstance(value.get("dict"), dict):
        return stand_in(value)
    got: dict[str, object] = {}  # tensors, or stand-ins where a record is not one
    for n, record in value["dict"].items():
        try:
            got[n] = torch.tensor(record["data"], dtype=torch.float64).reshape(record["shape"])
        except (KeyError, TypeError, ValueError, RuntimeError):
            got[n] = stand_in(record)
    return got


def check_one(name: str, result: FixtureResult, seed: int) -> tuple[bool, str | None]:
    """(matched, why not) for one fixture's FixtureResult."""
    if result.error is not None:
        return False, f"raised {result.error}"
    expected = reference(name, seed)
    got = recorded(result.value)
    problem = selfcheck.problem_with_result(name, got, {n: tuple(e.shape) for n, e in expected.items()})
    if problem:
        return False, problem
    wrong, hint = selfcheck.verdict(name, got, expected, variant_values(name, seed), BLANKS[name].fixture(seed),
                                    mistake_values(name, seed))
    if not wrong:
        return True, None
    return False, f"{', '.join(wrong)} {'differs' if len(wrong) == 1 else 'differ'} from the reference. {hint}"


def as_recorded(values: Values) -> dict:
    """`values` in the form a probe records a dict of tensors (harness.serialise), for check_one."""
    return {"dict": {n: {"shape": list(t.shape), "data": t.flatten().tolist()} for n, t in values.items()}}


def published_passes(name: str, seed: int) -> bool:
    """Whether the published fixture's reference result, handed in for the fixture drawn from `seed`, would be
    judged right there: for a class blank's few recorded counts it can be (about 1 seed in 10 for ExperienceReplay)."""
    return check_one(name, FixtureResult(None, as_recorded(reference(name, selfcheck.FIXTURE_SEED))), seed)[0]


def hidden_seeds(names: Sequence[str], n: int, draw: Callable[[int], int] = secrets.randbelow) -> list[int]:
    """n grading-time seeds (drawn with `draw`, never stored) on none of which the published result of any blank in
    `names` passes: a result copied from the published values, which ship in the student wheel, then matches
    no hidden fixture."""
    seeds: list[int] = []
    while len(seeds) < n:
        seed = draw(2**31)
        if seed != selfcheck.FIXTURE_SEED and seed not in seeds and not any(published_passes(m, seed) for m in names):
            seeds.append(seed)
    return seeds


def judge(part: Part, raw: object, seeds: Sequence[int]) -> Verdict:
    """The Verdict on a function part from its probe's record, which the student's process wrote. seeds[0] is
    the published fixture, the rest are hidden; the record's results follow them."""
    probe = ProbeRecord.parse(raw, seeds)
    if probe is None:
        return Verdict(part.name, 0.0, "tampered", "the probe's record is damaged")
    if probe.missing is not None:
        return Verdict(part.name, 0.0, "missing", probe.missing)
    checks = [check_one(part.name, r, s) for r, s in zip(probe.results, seeds, strict=True)]
    published, hidden = checks[0], checks[1:]
    passed = sum(ok for ok, _ in hidden)
    detail = ""
    if passed < len(hidden):
        detail = one_line(next(why for ok, why in hidden if not ok), 400)
        if published[0]:
            detail += "; the published fixture matches, so the result may be fitted to it"
    cause = "right" if passed == len(hidden) else "partial" if passed else "wrong"
    return Verdict(part.name, round(part.points * passed / len(hidden), 2), cause, detail, passed, len(hidden))
