"""Students on Colab, end to end, in a Colab-like environment: `.venv-colab` (`make colab-env`) has
Colab's Python 3.13, torch 2.11, torchvision 0.26, ipywidgets 7.7.1, notebook 6.5.7 and matplotlib
3.10, and neither nbgrader nor cl_course. Each test runs notebooks in a fresh virtual environment on
top of it (a .pth file makes Colab's packages visible), so every run installs cl_course from scratch.

The student repository comes from `python -m grader release`; a local HTTP server on 127.0.0.1 serves
it, standing in for GitHub's raw-file host.
"""
import functools
import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat

from cl_course.config import HW14_METHODS as METHODS
from cl_course.config import REGULARISED
from cl_course.lessons import lesson2
from cl_course.teaching.blanks import lesson_blanks
import pytest

from grader.tests.make_corpus import solution_sources
from helpers import COLAB, colab_overlay
from test_notebooks import errors, execute, grade_id, hw14_table, lesson2_table, text

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = "hw14_lifelong_learning.ipynb"
LESSON2 = "lesson2_scenarios_and_replay.ipynb"
UNWRITTEN = ("NotImplementedError", "NotWrittenError")  # a stub, and a check or training that met one


@pytest.fixture(scope="module")
def colab_env():
    """Checks that .venv-colab is there and Colab-like."""
    if not COLAB.exists():
        if os.environ.get("CI") or os.environ.get("CL_COURSE_REQUIRE_DATA"):
            pytest.fail(f"{COLAB} is missing: `make colab-env` creates it (make test does)")
        pytest.skip(f"{COLAB} is missing: run `make colab-env`")
    subprocess.run([COLAB, "-c", "import torch, torchvision, ipywidgets, notebook, matplotlib"], check=True)
    for module in ("cl_course", "nbgrader"):  # (run outside the repo, whose cl_course/ would be found)
        assert subprocess.run([COLAB, "-c", f"import {module}"], capture_output=True, cwd="/").returncode, \
            f"{module} must not be in the Colab-like environment"


class Server(http.server.ThreadingHTTPServer):
    """Serves a folder on 127.0.0.1 and remembers the paths asked for."""

    def __init__(self, folder):
        requests = self.requests = []

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, format, *args):
                requests.append(self.path)
        super().__init__(("127.0.0.1", 0), functools.partial(Handler, directory=str(folder)))
        self.folder = Path(folder)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        threading.Thread(target=self.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    server = Server(tmp_path_factory.mktemp("raw"))
    yield server
    server.shutdown()


@pytest.fixture(scope="module")
def student_repo(host):
    """The student repository, as `python -m grader release` writes it, under the raw-file host's folder."""
    repo = host.folder / "owner" / "hw14" / "main"
    wheel_url = f"{host.url}/owner/hw14/main/cl_course-0.1.0-py3-none-any.whl"
    done = subprocess.run([sys.executable, "-m", "grader", "release", "--repo", "owner/hw14", "--out", str(repo),
                           "--wheel-url", wheel_url], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return repo


def fresh_kernel(tmp):
    """A new virtual environment on top of .venv-colab, registered as the kernel "student"."""
    python = colab_overlay(tmp / "venv")
    spec = tmp / "jupyter" / "kernels" / "student"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({"argv": [str(python), "-m", "ipykernel_launcher", "-f",
                                                           "{connection_file}"],
                                                  "display_name": "student", "language": "python"}))
    return python, tmp / "jupyter"


def run_as_student(notebook, folder, tmp, data_root, profile=""):
    """Run `notebook` (a path in `folder`, the student's /content) in a fresh Colab-like kernel (in the profile its
    first cell chooses, unless `profile` says another)."""
    python, jupyter = fresh_kernel(tmp)
    env = {"JUPYTER_PATH": str(jupyter), "CL_COURSE_DATA": str(Path(data_root).resolve()),
           "CL_COURSE_PROFILE": profile, "XDG_CACHE_HOME": str(tmp / "cache")}
    return execute(notebook, folder, kernel="student", env=env), python


def copy_of(student_repo, folder, wheel_url=None, notebook=NOTEBOOK):
    """The released notebook as a student downloads it from Colab ("Copy of ..."), alone in `folder`."""
    folder.mkdir()
    nb = nbformat.read(student_repo / notebook, as_version=4)
    if wheel_url:
        nb.cells[1].source = re.sub(r'^COURSE_WHEEL = ".*"$', f'COURSE_WHEEL = "{wheel_url}"', nb.cells[1].source,
                                    flags=re.M)
    path = folder / f"Copy of {notebook}"
    nbformat.write(nb, path)
    return path, nb


def edition(python, folder):
    done = subprocess.run([python, "-c", "import cl_course; print(cl_course.__version__, cl_course.EDITION)"],
                          capture_output=True, text=True, cwd=folder)
    return done.stdout.strip()


def test_the_released_notebook_installs_from_the_repository_and_fails_only_where_unfilled(
        student_repo, host, colab_env, data_root, tmp_path):
    path, _ = copy_of(student_repo, tmp_path / "content")
    nb, python = run_as_student(path, path.parent, tmp_path, data_root)
    assert "/owner/hw14/main/cl_course-0.1.0-py3-none-any.whl" in host.requests
    assert edition(python, path.parent) == "0.1.0 student"
    setup = text(nb.cells[1])
    assert "cl_course 0.1.0 (student edition)" in setup and "Profile quick (PROFILE above)" in setup
    failed = errors(nb)
    assert all(e.ename in UNWRITTEN for e in failed.values()), \
        {i: (e.ename, e.evalue) for i, e in failed.items() if e.ename not in UNWRITTEN}
    trains = {i for i, c in enumerate(nb.cells)
              if any(f'course.train("{m}"' in c.source for m in REGULARISED) or "course.lambda_sweep(" in c.source}
    expected = {i for i, c in enumerate(nb.cells) if (grade_id(c) or "").startswith(("check_", "q"))} | trains
    assert set(failed) == expected
    for i in trains:  # each fails at once, naming what to write, instead of training first
        assert re.match(r"\w+ cannot train yet: \w+ is not written", failed[i].evalue), failed[i].evalue
    ran = [c.source for c in nb.cells
           if c.cell_type == "code" and c.outputs and not any(o.output_type == "error" for o in c.outputs)]
    assert any('course.train("baseline"' in c for c in ran) and any("comparison_markdown" in c for c in ran)


def test_the_released_notebook_with_the_solutions_filled_in_passes_every_cell(
        student_repo, colab_env, data_root, tmp_path):
    path, nb = copy_of(student_repo, tmp_path / "content")
    solutions = solution_sources()
    for cell in nb.cells:
        if grade_id(cell) in solutions:
            cell.source = solutions[grade_id(cell)]
    nbformat.write(nb, path)
    started = time.perf_counter()
    nb, _ = run_as_student(path, path.parent, tmp_path, data_root)
    print(f"hw14, quick profile, student edition: {time.perf_counter() - started:.0f} s")
    assert not errors(nb), {i: (e.ename, e.evalue) for i, e in errors(nb).items()}
    checks = [c for c in nb.cells if (grade_id(c) or "").startswith("check_")]
    assert {grade_id(c) for c in checks} == {f"check_{n}" for n in lesson_blanks("hw14")}
    assert all("parameters match" in text(c) for c in checks)
    setup = text(nb.cells[3])
    assert "profile quick: 5 tasks x 2 epochs" in setup and "lambdas: ewc 1000, mas 0.1, si 300" in setup
    table = hw14_table(nb)
    assert "not trained" not in table and all(f"| {m} | " in table for m in METHODS)
    sweep = [line for c in nb.cells if c.cell_type == "code"
             for line in text(c).splitlines() if line.startswith("lambda ")]
    assert len(sweep) == 5  # the stability-plasticity sweep
    figures = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(figures) >= 15  # digits, 7 runs' curves and matrices, importances, sweep, the comparison's


def test_lesson2_released_fails_only_where_unfilled_and_says_what_to_write(student_repo, colab_env, data_root,
                                                                           tmp_path):
    path, _ = copy_of(student_repo, tmp_path / "content", notebook=LESSON2)
    nb, _ = run_as_student(path, path.parent, tmp_path, data_root, profile="grading")  # what fails is profile-free
    assert "cl_course 0.1.0 (student edition)" in text(nb.cells[1])
    failed = errors(nb)
    assert all(e.ename in UNWRITTEN for e in failed.values()), \
        {i: (e.ename, e.evalue) for i, e in failed.items() if e.ename not in UNWRITTEN}
    trains = {i for i, c in enumerate(nb.cells) if "lesson." in c.source and  # a notebook class or function passed
              re.search(r"\b(strategy|herding_selection)=(LwF|ExperienceReplay|AGEM|herding_selection)\b", c.source)}
    expected = {i for i, c in enumerate(nb.cells) if (grade_id(c) or "").startswith(("check_", "q"))} | trains
    assert set(failed) == expected
    for i in trains:  # each fails at once, naming what to write, instead of training first
        assert re.match(r"\w+ cannot train yet: \w+ is not written", failed[i].evalue), failed[i].evalue
    assert "ewc is not trained here: it needs fisher_diagonal" in "".join(text(c) for c in nb.cells
                                                                          if c.cell_type == "code")
    ran = [c.source for c in nb.cells
           if c.cell_type == "code" and c.outputs and not any(o.output_type == "error" for o in c.outputs)]
    assert any('lesson.train("baseline"' in c for c in ran) and any("comparison_markdown" in c for c in ran)


def test_lesson2_released_with_the_solutions_filled_in_passes_every_cell_and_shows_the_lesson(
        student_repo, colab_env, data_root, tmp_path):
    """In the quick profile, as a student on a CPU runs it (the time is in the test's output and the README)."""
    path, nb = copy_of(student_repo, tmp_path / "content", notebook=LESSON2)
    solutions = solution_sources("lesson2")
    for cell in nb.cells:
        if grade_id(cell) in solutions:
            cell.source = solutions[grade_id(cell)]
    nbformat.write(nb, path)
    started = time.perf_counter()
    nb, _ = run_as_student(path, path.parent, tmp_path, data_root)
    print(f"lesson 2, quick profile, student edition: {time.perf_counter() - started:.0f} s")
    assert not errors(nb), {i: (e.ename, e.evalue) for i, e in errors(nb).items()}
    checks = [c for c in nb.cells if (grade_id(c) or "").startswith("check_")]
    assert len(checks) == 6 and all(re.search(r"(all \d+ entries match|its entry matches)", text(c)) for c in checks)
    assert "profile quick: 5 tasks" in text(nb.cells[3])
    rows = lesson2_table(nb)
    trained = {m: float(rows[m][6]) for m in lesson2.METHODS if rows[m][6] != "not trained"}  # class-IL
    assert set(trained) == set(lesson2.METHODS) - {"ewc", "si"}  # the student edition leaves those to HW14's functions
    # the lesson, in a student's own quick run: in class-IL the baseline forgets all but the last task, replay rescues
    assert trained["baseline"] < 30 and trained["er"] > trained["baseline"] + 40 and trained["icarl"] > 50, trained
    task_il = {m: float(rows[m][0]) for m in trained if m != "icarl"}  # iCaRL is class-IL only
    assert min(task_il.values()) > 70, task_il  # task-IL is easy for everyone
    # every sentence of the conclusions that states a number or an ordering is checked against this run
    conclusions = next("\n".join(o.get("data", {}).get("text/markdown", "") for o in c.outputs)
                       for c in nb.cells if "lesson.conclusions(results)" in c.source)
    # what the student edition cannot train (the library's memories, its LwF variant) is the shipped run, said so
    shown = {key: text(next(c for c in nb.cells if key in c.source))
             for key in ("budget.lesson_sweep", "lesson.lwf_old_classes_only")}
    assert "shipped quick-profile sweep" in shown["budget.lesson_sweep"]
    assert "K = 2,000: herding" in shown["budget.lesson_sweep"]
    assert "shipped quick-profile run of seed 1" in shown["lesson.lwf_old_classes_only"]
    bullets = [line for line in conclusions.splitlines() if line.startswith("- ")]
    # 7 sentences without EWC and SI, which the student edition trains only with HW14's functions passed in
    assert len(bullets) >= 7 and all(b.endswith("(holds in your run)") for b in bullets), conclusions


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("case", ["404", "offline"])
def test_an_install_that_fails_says_what_to_do_in_one_paragraph(case, student_repo, host, colab_env, data_root,
                                                                tmp_path):
    url = (f"{host.url}/owner/hw14/main/wrong/cl_course-0.1.0-py3-none-any.whl" if case == "404"
           else f"http://127.0.0.1:{closed_port()}/cl_course-0.1.0-py3-none-any.whl")
    path, nb = copy_of(student_repo, tmp_path / "content", url)
    nb.cells = nb.cells[:2]  # the introduction and the set-up cell
    nbformat.write(nb, path)
    nb, python = run_as_student(path, path.parent, tmp_path, data_root)
    (error,) = [o for o in nb.cells[1].outputs if o.output_type == "error"]
    assert error.ename == "CourseSetupError" and len(error.traceback) == 1  # the paragraph, no traceback
    message = error.traceback[0]
    why = "HTTP error 404" if case == "404" else "could not be reached (Connection refused)"
    assert message.startswith("CourseSetupError: The course package cl_course 0.1.0 could not be installed: ")
    assert why in message and "Two ways out: (1) download cl_course-0.1.0-py3-none-any.whl" in message
    assert "upload it next to this notebook" in message and "(2) make sure this notebook is online" in message
    shown = json.dumps([o for c in nb.cells for o in c.get("outputs", [])])
    assert "Traceback" not in shown and "CalledProcessError" not in shown and "pip" not in text(nb.cells[1])
    assert edition(python, path.parent) == ""  # nothing half-installed


def test_a_browser_renamed_wheel_beside_the_notebook_is_installed(student_repo, host, colab_env, data_root, tmp_path):
    path, nb = copy_of(student_repo, tmp_path / "content", f"{host.url}/nowhere/cl_course-0.1.0-py3-none-any.whl")
    nb.cells = nb.cells[:2]
    nbformat.write(nb, path)
    shutil.copy(student_repo / "cl_course-0.1.0-py3-none-any.whl", path.parent / "cl_course-0.1.0-py3-none-any (1).whl")
    shutil.copy(student_repo / "cl_course-0.1.0-py3-none-any.whl", path.parent / "cl_course-0.0.9-py3-none-any.whl")
    nb, python = run_as_student(path, path.parent, tmp_path, data_root)
    assert not errors(nb), errors(nb)
    assert not any("nowhere" in r for r in host.requests)  # the copy beside the notebook was used
    assert edition(python, path.parent) == "0.1.0 student"


def test_the_released_demo_shows_every_shipped_run_with_the_student_wheel(student_repo, colab_env, data_root,
                                                                          tmp_path):
    folder = tmp_path / "content"
    folder.mkdir()
    nb = nbformat.read(student_repo / "demo_forgetting_curves.ipynb", as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(
        "for protocol in ('hw14', 'paper'):\n"
        "    demo.protocol.value = protocol\n"
        "    print(protocol, sorted(demo.run()))\n"
        "demo.subset.value = 300\n"
        "demo.run()\n"
        "print(demo.status.value)"))
    nbformat.write(nb, folder / "demo_forgetting_curves.ipynb")
    nb, _ = run_as_student(folder / "demo_forgetting_curves.ipynb", folder, tmp_path, data_root)
    assert not errors(nb), errors(nb)
    assert "cl_course 0.1.0 (student edition)" in text(nb.cells[1])
    shown = text(nb.cells[-1])
    for protocol in ("hw14", "paper"):
        assert f"{protocol} {sorted(METHODS)}" in shown
    assert "live training needs the instructor&#x27;s edition" in shown


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def test_a_failing_check_is_one_line_and_an_error_in_your_own_code_shows_your_code(student_repo, colab_env, data_root,
                                                                                   tmp_path):
    """As a student meets them in the classic notebook's kernel (ipykernel and IPython as Colab has them): the
    checks' own errors are their message alone; an error raised in the student's code shows the student's frames,
    not the check's in selfcheck.py."""
    path, nb = copy_of(student_repo, tmp_path / "content")
    released = {grade_id(c): c.source for c in nb.cells if grade_id(c)}
    zeros = ("def fisher_diagonal(model, batches):\n"
             "    return {n: torch.zeros_like(p) for n, p in model.named_parameters()}")
    crashes = ("def fisher_diagonal(model, batches):\n    for x, y in batches:\n"
               "        loss = F.cross_entropy(model(x), y)\n        fisher[undefined_name] = loss")
    train = 'course.train("ewc", config, tasks, fisher_diagonal=fisher_diagonal)'
    cells = ["config, tasks = course.start(PROFILE)",
             released["fisher_diagonal"], released["check_fisher_diagonal"], train,  # 4-6: not written
             zeros, released["check_fisher_diagonal"], train,  # 7-9: wrong
             crashes, released["check_fisher_diagonal"], train,  # 10-12: raises in the student's code
             released["quiz_1"], released["q01"]]  # 13-14: the quiz not answered
    nb.cells = nb.cells[:3] + [nbformat.v4.new_code_cell(c) for c in cells]  # the introduction and the set-up
    nbformat.write(nb, path)
    nb, _ = run_as_student(path, path.parent, tmp_path, data_root, profile="grading")
    failed = errors(nb)
    assert set(failed) == {5, 6, 8, 9, 11, 12, 13, 14}, {i: (e.ename, e.evalue) for i, e in failed.items()}
    for i, (ename, message) in {5: ("NotWrittenError", "fisher_diagonal is not written yet: fill in its cell above"),
                                6: ("NotWrittenError", "ewc cannot train yet: fisher_diagonal is not written"),
                                8: ("SelfCheckError", "fisher_diagonal: "),
                                9: ("SelfCheckError", "ewc will not train with this fisher_diagonal"),
                                14: ("NotWrittenError", "q01 is not answered yet")}.items():
        assert failed[i].ename == ename and failed[i].evalue.startswith(message), (i, failed[i].evalue)
        assert failed[i].traceback == [f"{ename}: {failed[i].evalue}"]  # the message alone
    for i in (11, 12):  # the student's frame, with its line, and none of the package's
        shown = ANSI.sub("", "\n".join(failed[i].traceback))
        assert failed[i].ename == "NameError" and "in fisher_diagonal(model, batches)" in shown, shown
        assert re.search(r"----> 4\s+fisher\[undefined_name\] = loss", shown), shown
        assert not re.search(r"(selfcheck|blanks|notebook|exercises)\.py", shown), shown
    assert "(raised by your fisher_diagonal on the self-check's fixture on cpu, before training ewc)" in \
        ANSI.sub("", "\n".join(failed[12].traceback))
    # the released quiz stub itself: what to write, in place of which line
    assert failed[13].ename == "NotImplementedError"
    assert failed[13].evalue == ('answer q01, q02, q03, q04, q05 here, in place of this line: each a set of option '
                                 'letters, e.g. q01 = {"a", "c"}')
