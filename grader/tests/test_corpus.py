"""End to end, exactly as the README's TA section runs it: its commands, as written (relative paths
included), from the repository's root, on the corpus in submissions/: those for one assignment
(--assignment hw14) once for each assignment with cases, the rest once. Every part of every
submission must get the score in expected.json (python -m grader.tests.make_corpus writes both),
and no hostile submission may reach the TA's machine, another submission or a verdict."""
import csv
import json
import os
import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from cl_course.data import data_root
from grader.confinement import CGROUP_ROOT, own_cgroups
from grader.release import secrets_of

HERE = Path(__file__).parent
REPO = HERE.parents[1]
EXPECTED = json.loads((HERE / "expected.json").read_text())  # assignment -> student -> expected scores
HW14 = EXPECTED["hw14"]  # the attacks and their causes below are hw14's cases
SECRET = Path("/tmp/cl-grade-corpus-secret")  # what zoe's links point at: a root-only file of the TA's machine
SECRET_TEXT = "TA_API_TOKEN=do-not-leak-4711"

pytestmark = pytest.mark.usefixtures("bwrap")


def readme_commands():
    """The command lines of the README's grading block, comments removed."""
    text = (REPO / "README.md").read_text()
    block = re.search(r"## Grading \(TAs\).*?```bash\n(.*?)```", text, re.S).group(1)
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]


def for_each_assignment(command):
    """[(assignment, command)]: a command for one assignment (the README's are hw14's) for each assignment
    with cases, told it; any other command once (assignment None)."""
    if "--assignment hw14" not in command:
        return [(None, command)]
    return [(name, command.replace("--assignment hw14", f"--assignment {name}")) for name in EXPECTED]


def checkout_beside_the_data(tmp_path):
    """A folder laid out like a clone of this repository with ../shared/data beside it (links to the
    real ones), so that the README's relative paths mean what they mean for a TA."""
    root = tmp_path / "repo"
    root.mkdir()
    for name in ("cl_course", "grader", "notebooks", "pyproject.toml", "README.md", ".venv"):
        (root / name).symlink_to(REPO / name)
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "data").symlink_to(data_root())
    return root


def sandbox_processes():
    found = subprocess.run(["pgrep", "-u", ",".join(str(u) for u in range(61000, 61100))], capture_output=True,
                           text=True).stdout
    return found.split()


def leave_what_a_killed_grader_leaves():
    """As root: a sandbox's cgroups and scratch mount named by a grader pid that is gone, as an OOM kill leaves
    them; [their paths], which the README's autograde must remove. None without root."""
    if os.getuid() != 0:
        return None
    finished = subprocess.Popen(["true"])
    finished.wait()
    name = f"cl-grade-{finished.pid}-61099-1"
    own = own_cgroups()
    if (CGROUP_ROOT / "cgroup.controllers").exists() and "" in own:  # v2: one tree
        groups = [CGROUP_ROOT / own[""].lstrip("/") / name]
    else:
        groups = [CGROUP_ROOT / c / own[c].lstrip("/") / name for c in ("memory", "pids", "cpuacct") if c in own]
    scratch = Path(f"/tmp/cl-grade-{finished.pid}-corpus/scratch")
    scratch.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(scratch)], check=True)
    for group in groups:
        group.mkdir()
    return [*groups, scratch]


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    if not data_root().is_dir():
        pytest.skip("no MNIST data root: set CL_COURSE_DATA")
    root = checkout_beside_the_data(tmp_path_factory.mktemp("ta"))
    SECRET.write_text(SECRET_TEXT)
    SECRET.chmod(0o600)
    left_behind = leave_what_a_killed_grader_leaves()
    outputs = {}  # (step, assignment or None) -> stdout
    for assignment, command in [c for line in readme_commands() for c in for_each_assignment(line)]:
        env = {k: v for k, v in os.environ.items() if k != "CL_COURSE_DATA"}  # the README's line sets its own
        done = subprocess.run(["bash", "-c", command], cwd=root, capture_output=True, text=True, timeout=1800,
                              env=dict(env, OMP_NUM_THREADS="1"))
        assert done.returncode == 0, f"{command}\n{done.stderr[-3000:]}"
        outputs[command.split(" -m grader ")[1].split()[0], assignment] = done.stdout
        outputs["stderr", command] = done.stderr
    return root / "course", root, outputs | {"left behind": left_behind}


def log(course, student, assignment="hw14"):
    return json.loads((course / "grading" / assignment / f"{student}.json").read_text())


def test_collect_takes_every_student_and_lists_the_rest(graded):
    collected = graded[2]["collect", "hw14"]
    assert f"collected {len(HW14)} submissions of hw14" in collected
    assert "not collected: README.txt: not a notebook (.ipynb)" in collected
    assert "not collected: hw14_lifelong_learning.ipynb: no student id in its path" in collected
    assert "leo: took 'my homework final.ipynb' as hw14_lifelong_learning.ipynb" in collected
    mimic = [line for line in collected.splitlines() if "mimic/" in line]
    assert mimic and "not collected" in mimic[0] and "link" in mimic[0]


@pytest.mark.parametrize("assignment, student", [(a, s) for a in EXPECTED for s in sorted(EXPECTED[a])])
def test_every_part_gets_its_expected_score(graded, assignment, student):
    course, _, outputs = graded
    expected = EXPECTED[assignment][student]
    parts = log(course, student, assignment)["parts"]
    got = {gid: part["score"] for gid, part in parts.items()}
    wrong = {gid: (got.get(gid), score) for gid, score in expected["parts"].items() if got.get(gid) != score}
    assert not wrong, {gid: parts[gid]["message"] for gid in wrong}
    total = expected["total"]
    assert f"{student}: {total:g} / {sum(p['points'] for p in parts.values()):g}" in outputs["autograde", assignment]
    for part in parts.values():  # every zero says why, as data
        assert part["score"] > 0 or (part["cause"] != "right" and part["message"].strip())


def test_causes_and_reasons_are_data(graded):
    course = graded[0]

    def part(student, gid):
        return log(course, student)["parts"][gid]

    assert "looks like the square of the batch-mean gradient" in part("carol", "check_fisher_diagonal")["detail"]
    assert part("carol", "check_fisher_diagonal")["cause"] == "wrong"
    rupert = part("rupert", "check_fisher_diagonal")
    assert rupert["cause"] == "timed out" and "CPU time" in rupert["detail"] and rupert["cell"] == "fisher_diagonal"
    assert "MemoryError" in part("sybil", "check_mas_importance")["detail"]
    assert part("ursula", "check_si_importance")["cause"] == "crashed"
    assert "SystemExit" in part("ursula", "check_si_importance")["detail"]
    assert "exited with status 0" in part("victor", "check_rwalk_score")["detail"]
    assert "segmentation fault" in part("walter", "check_scp_importance")["detail"]
    assert part("cody", "check_si_path_step")["cause"] == "tampered"
    assert part("ivan", "q22")["cause"] == "not answered" and part("ivan", "q01")["answer"] == ["a"]
    assert part("yann", "q01")["answer"] == ["b"]  # the forged key after the end was never read
    assert "not a notebook" in part("mallory", "q01")["detail"] and "empty" in part("nina", "q01")["detail"]
    judy = log(course, "judy")["notes"]
    assert any("restored the nbgrader metadata" in n for n in judy) and "restored the kernelspec" in judy
    assert any("crashed" in n for n in log(course, "zoe")["notes"])
    assert any("timed out" in n for n in log(course, "sam")["notes"])  # its spinning cell, not a graded part
    assert log(course, "tim")["score"] == HW14["tim"]["total"]  # its slow setup cell ran without a cell limit
    assert all(log(course, s, a)["seconds"] < 240 for a in EXPECTED for s in EXPECTED[a]), \
        "a submission held a worker for minutes"


def test_nothing_outlives_a_sandbox(graded):
    assert sandbox_processes() == []


def test_what_a_killed_grader_left_is_swept_when_grading_starts(graded):
    _, _, outputs = graded
    if outputs["left behind"] is None:
        pytest.skip("cgroups and mounts need root")
    assert [p for p in outputs["left behind"] if p.exists()] == []
    assert str(outputs["left behind"][-1]) not in Path("/proc/self/mounts").read_text()
    said = [v for k, v in outputs.items() if k[0] == "stderr" and "autograde" in k[1]]
    assert "removed what a killed grader left behind" in said[0] and str(outputs["left behind"][0]) in said[0]


class Live(HTMLParser):
    """Script that would run in a browser: <script> bodies and on* attributes, with our markers."""

    def __init__(self):
        super().__init__()
        self.found, self.in_script = [], False

    def handle_starttag(self, tag, attrs):
        self.in_script = tag == "script"
        self.found += [f"{tag} {k}" for k, v in attrs if k.startswith("on") and "xss" in (v or "")]

    def handle_data(self, data):
        if self.in_script and "xss" in data:
            self.found.append(data.strip()[:80])


def test_feedback_is_inert_and_holds_no_hidden_test(graded, tmp_path):
    course, root, outputs = graded
    assert all(outputs["feedback", a].count("wrote") == len(EXPECTED[a]) for a in EXPECTED)
    secrets = secrets_of()
    for html_file in sorted((course / "feedback").rglob("*.html")):
        html = html_file.read_text()
        leaked = [line for line in secrets if line in html]
        assert not leaked, (html_file, leaked[:3])
        assert "BEGIN HIDDEN TESTS" not in html and "assert set(q" not in html
        live = Live()
        live.feed(html)
        assert not live.found, (html_file, live.found)
        assert SECRET_TEXT not in html
    amir = (course / "feedback" / "amir" / "hw14" / "hw14_lifelong_learning.html").read_text()
    assert "xss-1" in amir  # the student's markdown is shown, as text
    carol = (course / "feedback" / "carol" / "hw14" / "hw14_lifelong_learning.html").read_text()
    assert "Likely mistake" in carol


def test_the_second_attacks_holes_stay_closed(graded):
    """ines: cells after the quiz are not run; kai: answers in a huge cell cost those answers only, and the cell
    is shortened in feedback; lena: printed verdicts are marked as the student's, stripped of colours and bidi,
    and the sandbox shows no host details; nora: the temporary folder's files are capped; wanda: a record flood
    costs its cell."""
    course, _, _ = graded
    assert log(course, "ines")["seconds"] < 200  # her three 200 s sleeps would take 600
    kai = log(course, "kai")["parts"]
    assert "more than the 50,000 the grader reads" in kai["q01"]["detail"] and kai["q06"]["cause"] == "right"
    shown = json.loads((course / "autograded" / "lena" / "hw14" / "hw14_lifelong_learning.ipynb").read_text())
    printed = "".join(o.get("text", "") for c in shown["cells"] for o in c.get("outputs", []))
    assert "\u2502 fisher_diagonal: 3 of 3 hidden fixtures match the reference\n" in printed
    assert "\u2502 q01: right\n" in printed and not re.search("[\x1b\u200b\u202e]", printed)
    assert "\u2502 root:x:0:0::/:/usr/sbin/nologin\n" in printed and "sandbox" in printed
    assert "\u2502 unshare: 1\n" in printed
    nora = json.loads((course / "autograded" / "nora" / "hw14" / "hw14_lifelong_learning.ipynb").read_text())
    flood = next(c.get("outputs") for c in nora["cells"] if "empty files in the temp" in "".join(c["source"]))
    made = re.search(r"empty files in the temporary folder: (\d+) errno 28", json.dumps(flood))
    assert made and 1000 < int(made.group(1)) < 20_000, flood  # the scratch's inode cap holds
    wanda = log(course, "wanda")
    assert any("tampered" in n and "values" in n for n in wanda["notes"]), wanda["notes"]
    kai_feedback = (course / "feedback" / "kai" / "hw14" / "hw14_lifelong_learning.html").read_text()
    assert "more characters, not shown here" in kai_feedback  # a huge cell is shortened before it is rendered
    html = (course / "feedback" / "lena" / "hw14" / "hw14_lifelong_learning.html").read_text()
    assert "\u2502 fisher_diagonal: 3 of 3" in html and "\x1b" not in html and "\u202e" not in html


def test_similarity_ranks_the_copy_above_every_honest_pair(graded):
    _, root, outputs = graded
    rows = list(csv.DictReader((root / "similarity" / "hw14" / "similarity.csv").open()))
    assert {rows[0]["student_a"], rows[0]["student_b"]} == {"pablo", "quinton"}, rows[:3]
    assert float(rows[0]["score"]) > 0.6 and all(float(r["score"]) < 0.5 for r in rows[1:]), rows[:3]
    page = (root / "similarity" / "hw14" / "similarity.html").read_text()
    assert "pablo and quinton" in page and "never a grade" in page and "<script" not in page
    assert "never a grade" in outputs["similarity", "hw14"]


def test_export_and_report(graded):
    course, root, outputs = graded
    rows = {(r["assignment"], r["student_id"]): float(r["score"]) for r in csv.DictReader((root / "grades.csv").open())}
    assert {(a, s): rows[a, s] for a in EXPECTED for s in EXPECTED[a]} == \
        {(a, s): e["total"] for a in EXPECTED for s, e in EXPECTED[a].items()}
    assert all(score == 0 for (a, s), score in rows.items() if s not in EXPECTED.get(a, {}))  # nothing handed in
    report = (root / "report" / "hw14" / "report.md").read_text()
    assert report.startswith(f"# hw14 grading report ({len(HW14)} submissions")
    assert f"| check_fisher_diagonal | 3 | {len(HW14)} |" in report
    assert (root / "report" / "hw14" / "report.png").stat().st_size > 10_000
    assert "walter / check_scp_importance" in report
    injected = [line for line in report.splitlines() if line.startswith(("# Owned", "| a |")) or "![x](" in line]
    assert not injected and "bea / check_fisher_diagonal" in report
    for path in [*course.rglob("*.json"), *course.rglob("*.ipynb"), *(root / "report").rglob("report.md")]:
        assert SECRET_TEXT not in path.read_text(errors="replace"), path


def test_a_moodle_display_name_takes_no_other_students_grade(graded):
    """Hole 5, end to end with the README's collect and autograde lines (run last: it adds two students): in
    Moodle's download a student named "Eve_12345" (participant 67890) hands in an empty file beside the real
    12345's correct notebook; each is graded as herself, and two folders of one id are a conflict, not the newer."""
    course, root, _ = graded
    moodle, nb = root / "moodle", "hw14_lifelong_learning.ipynb"
    folders = {"Real Student_12345_assignsubmission_file_": (HERE / "submissions" / "alice" / nb).read_bytes(),
               "Eve_12345_67890_assignsubmission_file_": b"",
               "Ann Lee_555_assignsubmission_file_": b"ann", "Ann L._555_assignsubmission_file_": b"ann too"}
    for folder, data in folders.items():
        (moodle / folder).mkdir(parents=True)
        (moodle / folder / nb).write_bytes(data)
    lines = [c for c in readme_commands() if " collect " in c or " autograde " in c]
    collect = lines[0].replace("grader/tests/submissions", "moodle") + " --student-pattern moodle"
    autograde = lines[1] + " --student 12345 --student 67890"
    env = {k: v for k, v in os.environ.items() if k != "CL_COURSE_DATA"} | {"OMP_NUM_THREADS": "1"}
    done = [subprocess.run(["bash", "-c", c], cwd=root, capture_output=True, text=True, timeout=900, env=env)
            for c in (collect, autograde)]
    assert all(d.returncode == 0 for d in done), [d.stderr[-2000:] for d in done]
    assert "2 different submissions map to student id 555" in done[0].stdout
    assert not (course / "submitted" / "555").exists()
    assert log(course, "12345")["score"] == HW14["alice"]["total"] and log(course, "67890")["score"] == 0
