"""autograde's own decisions, with the run itself stood in for: a timeout beside other submissions
is graded again after the first pass (the second runs side by side), a grader bug costs one
submission, and each is recorded once."""
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
    for student in ("early", "slow", "broken", "slower"):
        course.submitted(student).parent.mkdir(parents=True)
        shutil.copy(CORRECT, course.submitted(student))
    return course


def grade_with(course, monkeypatch, timing_out, broken=(), second_run=lambda: None):
    """autograde on two threads, the real unconfined run stood in for: the first run of each student in
    `timing_out` loses a probe to a timeout, the students in `broken` meet a grader bug, and every
    second run calls `second_run` first. Returns ({student: Graded}, [(student, run number)] as started)."""
    real, lock, started, cells_of = ag.run_cells, threading.Lock(), [], {}

    def run(sandbox, cells, seeds):
        student = next(s for s, c in cells_of.items() if c is cells)
        with lock:
            started.append((student, sum(s == student for s, _ in started) + 1))
            runs = started[-1][1]
        if runs == 2:
            second_run()
        result = real(sandbox, cells, seeds)
        if student in timing_out and runs == 1:
            probe = next(c["index"] for c in cells if c["kind"] == "function")
            result.done.pop(probe)  # frozen: its fields cannot be replaced, their contents can
            result.stopped[probe] = {"cause": "timed out", "detail": "the cell used more than 30 s"}
        if student in broken:
            raise RuntimeError("a grader bug")
        return result

    prepare = ag.prepare

    def prepared(course_, student, release, parts):
        cells_of[student] = (p := prepare(course_, student, release, parts)).cells
        return p

    monkeypatch.setattr(ag, "run_cells", run)
    monkeypatch.setattr(ag, "prepare", prepared)
    graded = ag.autograde(course, Sandbox(course.student_site, backend="unconfined"), workers=2, progress=False)
    return {g.student: g for g in graded}, started


def test_a_timeout_beside_others_is_graded_again_after_the_first_pass(course, monkeypatch):
    graded, started = grade_with(course, monkeypatch, timing_out={"slow"}, broken={"broken"})
    full = sum(p.points for p in course.parts())
    assert sorted(graded) == ["broken", "early", "slow", "slower"]  # each once
    assert graded["slow"].score == full and "graded again after the first pass" in graded["slow"].notes[-1]
    assert started.index(("slow", 2)) == len(started) - 1  # queued behind every first run
    assert {v.cause for v in graded["broken"].verdicts.values()} == {"grader error"} and graded["early"].score == full
    logs = {p.stem: json.loads(p.read_text()) for p in course.path("grading", "hw14").glob("*.json")}
    assert logs["slow"]["score"] == full and logs["broken"]["score"] == 0


def test_second_runs_go_side_by_side_not_one_after_another(course, monkeypatch):
    both = threading.Barrier(2, timeout=60)  # broken (a grader error) unless two second runs meet
    graded, started = grade_with(course, monkeypatch, timing_out={"slow", "slower"}, second_run=both.wait)
    full = sum(p.points for p in course.parts())
    assert graded["slow"].score == graded["slower"].score == full, graded["slow"].notes
    assert sorted(started[-2:]) == [("slow", 2), ("slower", 2)]
