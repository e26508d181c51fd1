"""End to end, as the README's TA section runs it: setup, collect, autograde (sandboxed, two
workers), feedback, export, report on the corpus in submissions/. Every part of every submission
must get the score in expected.json (python -m grader.tests.make_corpus writes both)."""
import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
EXPECTED = json.loads((HERE / "expected.json").read_text())

pytestmark = pytest.mark.usefixtures("bwrap")


def grader(*args, cwd):
    done = subprocess.run([sys.executable, "-m", "grader", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    course = tmp_path_factory.mktemp("ta") / "course"
    repo = HERE.parents[1]
    grader("setup", str(course), cwd=repo)
    collected = grader("collect", str(HERE / "submissions"), "--course", str(course), cwd=repo)
    summary = grader("autograde", "--course", str(course), "--workers", "2", "--cell-timeout", "10", cwd=repo)
    return course, collected, summary


def test_collect_takes_every_student_and_lists_the_rest(graded):
    _, collected, _ = graded
    assert f"collected {len(EXPECTED)} submissions" in collected
    assert "not collected: README.txt: not a notebook (.ipynb)" in collected
    assert "not collected: hw14_lifelong_learning.ipynb: no student id in its path" in collected
    assert "leo: took 'my homework final.ipynb' as hw14_lifelong_learning.ipynb" in collected


@pytest.mark.parametrize("student", sorted(EXPECTED))
def test_every_part_gets_its_expected_score(graded, student):
    course, _, summary = graded
    log = json.loads((course / "grading" / f"{student}.json").read_text())
    got = {gid: part["score"] for gid, part in log["parts"].items()}
    wrong = {gid: (got.get(gid), score) for gid, score in EXPECTED[student]["parts"].items() if got.get(gid) != score}
    assert not wrong, {gid: log["parts"][gid]["message"] for gid in wrong}
    assert f"{student}: {EXPECTED[student]['total']:g} / 38" in summary
    for gid, part in log["parts"].items():  # every zero says why
        assert part["score"] > 0 or part["message"].strip()


def test_reasons_for_attacks_and_repairs_are_clear(graded):
    course = graded[0]

    def message(student, gid):
        return json.loads((course / "grading" / f"{student}.json").read_text())["parts"][gid]["message"]

    assert "likely mistake: looks like the square of the batch-mean gradient" in message("carol", "check_fisher_diagonal")
    assert "ran longer than 10 s" in message("rupert", "check_fisher_diagonal")
    assert "MemoryError" in message("sybil", "check_mas_importance")
    assert "SystemExit" in message("ursula", "check_si_importance")
    assert "exited with status 0" in message("victor", "check_rwalk_score")
    assert "segmentation fault" in message("walter", "check_scp_importance")
    assert "not a notebook" in message("mallory", "q01") and "empty" in message("nina", "q01")
    judy = json.loads((course / "grading" / "judy.json").read_text())["notes"]
    assert any("restored the nbgrader metadata" in n for n in judy) and "restored the kernelspec" in judy


def test_feedback_export_and_report(graded, tmp_path):
    course, _, _ = graded
    repo = HERE.parents[1]
    out = grader("feedback", "--course", str(course), cwd=repo)
    assert out.count("wrote") == len(EXPECTED)
    html = (course / "feedback" / "carol" / "hw14" / "hw14_lifelong_learning.html").read_text()
    assert "likely mistake" in html and "35" in html
    grader("export", "--course", str(course), "--out", str(tmp_path / "grades.csv"), cwd=repo)
    rows = {r["student_id"]: r for r in csv.DictReader((tmp_path / "grades.csv").open())}
    assert {s: float(r["score"]) for s, r in rows.items()} == {s: e["total"] for s, e in EXPECTED.items()}
    text = grader("report", "--course", str(course), "--out", str(tmp_path / "report"), cwd=repo)
    assert "| check_fisher_diagonal | 3 | 24 |" in text and (tmp_path / "report" / "report.png").stat().st_size > 10_000
    assert "walter / check_scp_importance" in text
