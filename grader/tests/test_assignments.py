"""A course of several assignments, on a small second one of our own ("mini": hw14's fisher_diagonal
and q01, with the same grade ids) put in the table after hw14, so that these tests do not wait for
the next lesson's notebook: setup makes both, collect sorts notebooks by name, and autograde,
feedback, export and report work on the assignment they are told. lesson2 stays in the table,
unwritten here, as the next lesson is until its notebook exists."""
import csv
import io
import json
import re
import shutil
from contextlib import redirect_stdout

import pytest

from grader import assignments
from grader.__main__ import build_parser, main
from grader.assignments import AssignmentError
from grader.course import Course
from grader.release import DEMO_NOTEBOOKS, ROOT, generate_notebooks, leaks, secrets_of, student_readme

HW14 = "hw14_lifelong_learning.ipynb"
MINI = "mini_second_assignment.ipynb"
MINI_KEY = 'q01 = {"d", "a"}'  # the mini's solution line of its own: no other notebook holds it
CORRECT = ROOT / "grader" / "tests" / "submissions" / "alice" / HW14


def mini_source():
    """The source notebook of "mini": a title, the imports, and hw14's fisher_diagonal and q01 cells."""
    cells = json.loads((ROOT / "notebooks" / HW14).read_text())["cells"]
    by_id = {c["metadata"].get("nbgrader", {}).get("grade_id"): c for c in cells}
    quiz = dict(by_id["quiz_1"], source=f"### BEGIN SOLUTION\n{MINI_KEY}\n### END SOLUTION\n")
    return {"cells": [{"cell_type": "markdown", "id": "title", "metadata": {}, "source": "# Mini: a second assignment"},
                      {"cell_type": "code", "id": "imports", "metadata": {}, "execution_count": None, "outputs": [],
                       "source": "import torch\nimport torch.nn.functional as F\n"
                                 "from cl_course.teaching import selfcheck"},
                      by_id["fisher_diagonal"], by_id["check_fisher_diagonal"], quiz, by_id["q01"]],
            "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
            "nbformat": 4, "nbformat_minor": 5}


@pytest.fixture(scope="module")
def notebooks(tmp_path_factory):
    """notebooks/ holding hw14, the demo and mini, with mini in the table: for this module only."""
    folder = tmp_path_factory.mktemp("repo") / "notebooks"
    folder.mkdir()
    for name in (HW14, *DEMO_NOTEBOOKS):
        (folder / name).symlink_to(ROOT / "notebooks" / name)
    (folder / MINI).write_text(json.dumps(mini_source(), indent=1))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(assignments, "NOTEBOOKS", folder)
        patch.setitem(assignments.ASSIGNMENTS, "mini", MINI)
        yield folder


def grader(*args):
    """`python -m grader ARGS` in this process (the table is patched here only): its stdout."""
    out = io.StringIO()
    with redirect_stdout(out):
        main([str(a) for a in args])
    return out.getvalue()


def error_of(capsys, *args):
    """The one-line error a mistaken command stops with."""
    with pytest.raises(SystemExit) as stopped:
        main([str(a) for a in args])
    message = str(stopped.value.code) if stopped.value.code not in (None, 2) else capsys.readouterr().err
    assert len(message.strip().splitlines()) == 1, message
    return message


def released_source(tmp, name):
    """The released notebook of assignment `name` (a dict)."""
    generate_notebooks(tmp / "work", tmp, names=[name])
    return json.loads((tmp / assignments.ASSIGNMENTS[name]).read_text())


def answered(release, q01):
    """mini's released notebook with hw14's right fisher_diagonal and the answer `q01`."""
    fisher = next(c["source"] for c in json.loads(CORRECT.read_text())["cells"]
                  if c["metadata"].get("nbgrader", {}).get("grade_id") == "fisher_diagonal")
    nb = json.loads(json.dumps(release))
    for cell in nb["cells"]:
        gid = cell["metadata"].get("nbgrader", {}).get("grade_id")
        cell["source"] = {"fisher_diagonal": fisher, "quiz_1": f"q01 = {q01}"}.get(gid, cell["source"])
    return json.dumps(nb)


def downloads(tmp):
    """alice's hw14 (right) and mini (right), and bob's mini (q01 wrong), as a folder of downloads."""
    folder = tmp / "downloads"
    for student in ("alice", "bob"):
        (folder / student).mkdir(parents=True)
    shutil.copy(CORRECT, folder / "alice" / HW14)
    mini = released_source(tmp, "mini")
    (folder / "alice" / f"Copy of {MINI}").write_text(answered(mini, "{'a', 'd'}"))
    (folder / "bob" / MINI).write_text(answered(mini, "{'a'}"))
    return folder


@pytest.fixture(scope="module")
def course(notebooks, tmp_path_factory):
    """A course set up with every written assignment; both collected from one folder of downloads, and
    mini autograded: (course folder, {step: stdout})."""
    tmp = tmp_path_factory.mktemp("course")
    root, folder = tmp / "course", downloads(tmp)
    out = {"setup": grader("setup", root),
           "collect hw14": grader("collect", folder, "--course", root),  # the default assignment
           "collect mini": grader("collect", folder, "--course", root, "--assignment", "mini"),
           "autograde": grader("autograde", "--course", root, "--assignment", "mini", "--no-sandbox",
                               "--data-root", tmp)}
    return root, out


def test_the_table_names_every_assignment_and_an_unknown_one_is_one_line(notebooks, capsys):
    assert list(assignments.ASSIGNMENTS)[:2] == ["hw14", "lesson2"] and assignments.DEFAULT == "hw14"
    assert assignments.written() == ["hw14", "mini"]  # lesson2's notebook is not in this notebooks/
    with pytest.raises(AssignmentError, match="no assignment 'nope': the assignments are hw14, lesson2, mini"):
        Course("anywhere", "nope")
    for command in ("setup", "collect x", "autograde", "feedback", "export", "report"):
        message = error_of(capsys, *command.split(), "--assignment", "nope")
        assert "invalid choice: 'nope'" in message and "hw14" in message and "mini" in message
    message = error_of(capsys, "setup", notebooks / "c", "--assignment", "lesson2")
    assert "assignment lesson2's notebook notebooks/lesson2_scenarios_and_replay.ipynb is not written yet" in message
    assert not (notebooks / "c").exists()  # nothing written before the check


def test_setup_makes_every_written_assignment(course, capsys):
    root, out = course
    assert "hw14 released in" in out["setup"] and "mini released in" in out["setup"]
    assert ("note: assignment lesson2's notebook notebooks/lesson2_scenarios_and_replay.ipynb is not written yet: "
            "not set up") in out["setup"]
    for name, notebook in (("hw14", HW14), ("mini", MINI)):
        assert (root / "release" / name / notebook).exists() and next((root / "release" / name).glob("*.whl"))
    from nbgrader.api import Gradebook
    with Gradebook(Course(root).db_url, Course(root).course_id) as gb:
        assert sorted(a.name for a in gb.assignments) == ["hw14", "mini"]
        assert {c.name for c in gb.find_notebook("mini_second_assignment", "mini").grade_cells} == \
            {"check_fisher_diagonal", "q01"}  # grade ids are per notebook: hw14's are the same names
    message = error_of(capsys, "collect", "x", "--course", root, "--assignment", "lesson2")
    assert "lesson2's notebook" in message and "not written yet" in message


def test_collect_takes_each_assignments_notebooks_only(course):
    root, out = course
    assert "collected 1 submissions of hw14" in out["collect hw14"]
    assert (f"not collected: bob/{MINI}: named as assignment mini's notebook: collect it with --assignment mini"
            in out["collect hw14"])  # not bob's only notebook, taken as hw14
    assert "collected 2 submissions of mini" in out["collect mini"]
    assert f"not collected: alice/{HW14}: named as assignment hw14's notebook" in out["collect mini"]
    assert Course(root).students() == ["alice"] and Course(root, "mini").students() == ["alice", "bob"]
    assert (root / "submitted" / "alice" / "hw14" / HW14).exists()
    assert (root / "submitted" / "alice" / "mini" / MINI).exists()


def test_each_command_works_on_the_assignment_it_is_told(course, tmp_path):
    root, out = course
    assert "alice: 4 / 4" in out["autograde"] and "bob: 3 / 4" in out["autograde"]
    assert sorted(p.name for p in (root / "grading" / "mini").iterdir()) == ["alice.json", "bob.json"]
    assert not (root / "grading" / "hw14").exists() and not (root / "autograded" / "alice" / "hw14").exists()

    written = grader("feedback", "--course", root, "--assignment", "mini")
    assert written.count("wrote") == 2 and (root / "feedback" / "bob" / "mini" / "mini_second_assignment.html").exists()
    assert grader("feedback", "--course", root) == ""  # no one is autograded on hw14 yet

    grader("export", "--course", root, "--out", tmp_path / "all.csv")
    rows = {(r["assignment"], r["student_id"]): float(r["score"])
            for r in csv.DictReader((tmp_path / "all.csv").open())}
    assert rows == {("hw14", "alice"): 0.0, ("hw14", "bob"): 0.0, ("mini", "alice"): 4.0, ("mini", "bob"): 3.0}
    grader("export", "--course", root, "--out", tmp_path / "mini.csv", "--assignment", "mini")
    assert {r["assignment"] for r in csv.DictReader((tmp_path / "mini.csv").open())} == {"mini"}

    grader("report", "--course", root, "--assignment", "mini", "--out", tmp_path / "report")
    report = (tmp_path / "report" / "report.md").read_text()
    assert report.startswith("# mini grading report (2 submissions, 4 points)")
    assert "| q01 | 1 | 2 | 0.50 |" in report and "q02" not in report


def test_grades_export_for_canvas_and_moodle(course, tmp_path, capsys):
    root, _ = course
    roster = tmp_path / "canvas.csv"
    roster.write_text("Student,ID,SIS User ID,SIS Login ID,Section,mini (7)\n    Points Possible,,,,,4.00\n"
                      "Alice,alice,,,A,\nCarol,carol,,,A,\n")
    said = grader("export", "--course", root, "--assignment", "mini", "--format", "canvas", "--roster", roster,
                  "--out", tmp_path / "out.csv", "--missing", "zero")
    assert "2 students on the roster, 1 of them graded" in said and "not on the roster, so not exported" in said
    assert said.rstrip().endswith(": bob")
    assert list(csv.reader((tmp_path / "out.csv").open()))[2:] == [["Alice", "alice", "", "", "A", "4"],
                                                                    ["Carol", "carol", "", "", "A", "0"]]
    assert "needs --roster" in error_of(capsys, "export", "--course", root, "--format", "canvas")
    assert "pass --assignment" in error_of(capsys, "export", "--course", root, "--format", "moodle", "--roster", roster)
    assert "is not Moodle's export" in error_of(capsys, "export", "--course", root, "--assignment", "mini", "--format",
                                                "moodle", "--roster", roster)


def test_a_feedback_bomb_costs_its_author_only(course):
    """A notebook whose rendering would take the machine's memory is stopped in its own process; the others'
    feedback is written."""
    from grader.report import feedback
    root, _ = course
    notebook = root / "autograded" / "bob" / "mini" / MINI
    kept = notebook.read_text()
    nb = json.loads(kept)
    nb["cells"].append({"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
                        "source": "# x\n" * 3_000_000})  # 12 MB of comment lines: GBs in pygments' HTML
    notebook.write_text(json.dumps(nb))
    try:
        written, failed = feedback(Course(root, "mini"), ["bob", "alice"], memory_mb=1024, seconds=120)
    finally:
        notebook.write_text(kept)
    assert [p.parent.parent.name for p in written] == ["alice"]
    assert failed[0][0] == "bob" and ("1,024 MB" in failed[0][1] or "120 s" in failed[0][1]), failed


def test_the_release_holds_every_assignment_and_no_solution_of_any(notebooks, tmp_path):
    secrets = secrets_of()
    assert MINI_KEY in secrets
    written = generate_notebooks(tmp_path / "work", tmp_path)
    assert written == [HW14, MINI, *DEMO_NOTEBOOKS]
    assert leaks(tmp_path / "work" / "release", secrets) == [] and leaks(notebooks, secrets)
    readme = student_readme("u/r", "main", tmp_path / "cl_course-0.1.0-py3-none-any.whl",
                            [tmp_path / HW14, tmp_path / MINI])
    assert f"| `{HW14}` | HW14: Lifelong learning on Permuted MNIST: fill in" in readme
    assert f"| `{MINI}` | Mini: a second assignment: fill in" in readme
    assert f"https://colab.research.google.com/github/u/r/blob/main/{MINI})" in readme
    assert not re.search(r"\{[A-Z_]+\}", readme)  # every placeholder filled


def test_the_parser_offers_the_option_where_it_means_something():
    parser = build_parser()
    assert parser.parse_args(["report"]).assignment == "hw14" and parser.parse_args(["export"]).assignment is None
    assert not hasattr(parser.parse_args(["release"]), "assignment")
