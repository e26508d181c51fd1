"""autograde's own decisions, with the run itself stood in for: a timeout beside other submissions
is graded again alone, a grader bug costs one submission, and each is recorded once."""
import json
import shutil
import threading
from pathlib import Path

import pytest

from grader import autograde as ag
from grader.course import setup
from grader.sandbox import Sandbox

CORRECT = Path(__file__).parent / "submissions" / "alice" / "hw14_lifelong_learning.ipynb"


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    course = setup(tmp_path_factory.mktemp("grading") / "course", ["hw14"])[0]
    for student in ("early", "slow", "broken"):
        course.submitted(student).parent.mkdir(parents=True)
        shutil.copy(CORRECT, course.submitted(student))
    return course


def test_a_timeout_beside_others_is_graded_again_alone(course, monkeypatch):
    real, lock, running, seen = ag.run_cells, threading.Lock(), [0], []

    def run(sandbox, cells, seeds):
        with lock:
            running[0] += 1
            seen.append((cells is slow_cells, running[0]))
        try:
            result = real(sandbox, cells, seeds)
            if cells is slow_cells and sum(s for s, _ in seen) == 1:  # its first run: a probe timed out
                probe = next(c["index"] for c in cells if c["kind"] == "function")
                result.done.pop(probe)  # frozen: its fields cannot be replaced, their contents can
                result.stopped[probe] = {"cause": "timed out", "detail": "the cell used more than 30 s"}
            if cells is broken_cells:
                raise RuntimeError("a grader bug")
            return result
        finally:
            with lock:
                running[0] -= 1

    prepare = ag.prepare
    slow_cells = broken_cells = None

    def prepared(course_, student, release, parts):
        nonlocal slow_cells, broken_cells
        p = prepare(course_, student, release, parts)
        slow_cells = p.cells if student == "slow" else slow_cells
        broken_cells = p.cells if student == "broken" else broken_cells
        return p

    monkeypatch.setattr(ag, "run_cells", run)
    monkeypatch.setattr(ag, "prepare", prepared)
    full = sum(p.points for p in course.parts())
    graded = {g.student: g for g in ag.autograde(course, Sandbox(course.student_site, backend="unconfined"),
                                                 workers=2, progress=False)}
    assert sorted(graded) == ["broken", "early", "slow"]  # each once
    assert graded["slow"].score == full and "graded again alone" in graded["slow"].notes[-1]
    assert [alone for again, alone in seen if again][-1] == 1  # the second run of "slow" ran by itself
    assert {v.cause for v in graded["broken"].verdicts.values()} == {"grader error"} and graded["early"].score == full
    logs = {p.stem: json.loads(p.read_text()) for p in course.path("grading", "hw14").glob("*.json")}
    assert logs["slow"]["score"] == full and logs["broken"]["score"] == 0
