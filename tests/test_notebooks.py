"""The notebooks end to end: the source notebooks run in the grading profile with every self-check
passing; `python -m grader release` writes a student repository that points only into itself and
holds no solution. (The released notebooks in a Colab-like environment: test_colab.py.)"""
import ast
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

import cl_course
from cl_course.lessons import lesson2
from cl_course.teaching.blanks import lesson_blanks
from cl_course.config import HW14_METHODS as METHODS
from grader import release as rel
from grader import stubs
from grader.assignments import notebook_of, written

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
STUDENT_NOTEBOOKS = [notebook_of(name) for name in written()]  # every assignment's whose notebook is written


def execute(path, cwd, kernel="python3", env=None):
    nb = nbformat.read(path, as_version=4)
    old = {k: os.environ.get(k) for k in env or {}}
    os.environ.update(env or {})
    try:
        NotebookClient(nb, timeout=600, kernel_name=kernel, allow_errors=True,
                       resources={"metadata": {"path": str(cwd)}}).execute()
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    return nb


def errors(nb):
    return {i: o for i, c in enumerate(nb.cells) if c.cell_type == "code"
            for o in c.outputs if o.output_type == "error"}


def text(cell):
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


def grade_id(cell):
    return cell.metadata.get("nbgrader", {}).get("grade_id")


@pytest.fixture(scope="module")
def grading_env(data_root):
    """The grading profile: every cell runs, in seconds (the quick profile's lessons are test_colab.py's)."""
    return {"CL_COURSE_PROFILE": "grading", "CL_COURSE_DATA": str(Path(data_root).resolve())}


def assert_every_check_passes(nb, lesson, questions):
    """No error, nothing on stderr, every self-check of `lesson` and every quiz check passed."""
    assert not errors(nb), {i: (e.ename, e.evalue) for i, e in errors(nb).items()}
    stderr = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"
              for o in c.outputs if o.output_type == "stream" and o.name == "stderr"]
    assert not stderr, f"cells {stderr} wrote to stderr (nbgrader zeroes graded cells that do)"
    checks = [c for c in nb.cells if (grade_id(c) or "").startswith("check_")]
    assert {grade_id(c) for c in checks} == {f"check_{n}" for n in lesson_blanks(lesson)}
    assert all(re.search(r"(all \d+ (parameters|entries) match|its entry matches)", text(c)) for c in checks)
    quiz = [c for c in nb.cells if re.fullmatch(r"q\d\d", grade_id(c) or "")]
    assert len(quiz) == questions and all("answer recorded" in text(c) for c in quiz)


def test_source_notebook_runs_with_every_check_passing(tmp_path, grading_env):
    nb = execute(NOTEBOOKS / "hw14_lifelong_learning.ipynb", tmp_path, env=grading_env)
    assert_every_check_passes(nb, "hw14", 25)
    assert "profile grading: 2 tasks x 1 epoch" in text(nb.cells[3])
    assert "not trained" not in hw14_table(nb) and all(f"| {m} | " in hw14_table(nb) for m in METHODS)


def hw14_table(nb):
    """The comparison's markdown table."""
    return next(o.data["text/markdown"] for c in nb.cells if c.cell_type == "code" for o in c.outputs
                if "this notebook: average accuracy" in o.get("data", {}).get("text/markdown", ""))


def test_lesson2_runs_with_every_check_passing(tmp_path, grading_env):
    nb = execute(NOTEBOOKS / "lesson2_scenarios_and_replay.ipynb", tmp_path, env=grading_env)
    assert_every_check_passes(nb, "lesson2", 18)
    starts = text(nb.cells[3])
    assert all(f"{s}-IL, profile grading: 2 tasks" in starts for s in ("task", "domain", "class"))
    assert all(lesson2_table(nb)[m][6] != "not trained" for m in lesson2.METHODS)  # class-IL: this notebook
    figures = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(figures) >= 20  # digits, 3 per method's scenarios, 3 confusion matrices, the comparison


def test_lesson3_runs_with_every_check_passing(tmp_path, grading_env):
    """Lesson 3's source notebook (not an assignment yet: grader/assignments.py) runs with its solutions."""
    nb = execute(NOTEBOOKS / "lesson3_context_specific.ipynb", tmp_path, env=grading_env)
    assert_every_check_passes(nb, "lesson3", 16)
    conclusions = next(c for c in nb.cells if "lesson.conclusions(" in c.source)
    assert "holds in your run" in "".join(o.get("data", {}).get("text/markdown", "") for o in conclusions.outputs)


def lesson2_table(nb):
    """The comparison's rows: {method: [task-IL this notebook, full run, published, domain-IL..., class-IL...]}."""
    table = next(o.data["text/markdown"] for c in nb.cells if c.cell_type == "code" for o in c.outputs
                 if "this notebook | full run | published" in o.get("data", {}).get("text/markdown", ""))
    return {line.split("|")[1].strip(): [v.strip() for v in line.strip("|").split("|")[1:]]
            for line in table.splitlines() if line.startswith("| ") and "---" not in line}


def install_block(source):
    """The set-up cell's install code: from COURSE_VERSION to the version check after `import cl_course`."""
    end = source.index("and run this cell again.\")", source.index("import cl_course"))
    return source[source.index("COURSE_VERSION = "):end]


def test_source_notebooks_have_nbgrader_metadata_and_no_outputs():
    blocks = set()
    for path in NOTEBOOKS.glob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), f"{path.name} has outputs"
        badge = f"https://colab.research.google.com/github/OWNER/NAME/blob/main/{path.name}"
        assert badge in nb.cells[0].source, f"{path.name}: the release points this badge at the student repository"
        assert f'COURSE_VERSION = "{cl_course.__version__}"' in nb.cells[1].source
        blocks.add(install_block(nb.cells[1].source))
    assert len(blocks) == 1  # one install cell, the same in every notebook
    for lesson, name in (("hw14", "hw14_lifelong_learning.ipynb"), ("lesson2", "lesson2_scenarios_and_replay.ipynb"),
                         ("lesson3", "lesson3_context_specific.ipynb")):
        nb = nbformat.read(NOTEBOOKS / name, as_version=4)
        ids = [grade_id(c) for c in nb.cells if grade_id(c)]
        assert len(ids) == len(set(ids))
        graded = [c.metadata.nbgrader for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
        points = {m["grade_id"]: m["points"] for m in graded}
        blanks = lesson_blanks(lesson)
        assert {n: points.pop(f"check_{n}") for n in blanks} == {n: b.points for n, b in blanks.items()}
        assert set(points.values()) == {1}  # the rest are the quiz's, a point per question
        assert all(m["locked"] for m in graded)


def test_demo_notebook_runs(tmp_path, grading_env):
    nb = execute(NOTEBOOKS / "demo_forgetting_curves.ipynb", tmp_path,
                 env=grading_env | {"XDG_CACHE_HOME": str(tmp_path)})
    assert not errors(nb)
    widget = next(o for o in nb.cells[2].outputs if o.output_type == "execute_result")
    assert "application/vnd.jupyter.widget-view+json" in widget.data


@pytest.fixture(scope="module")
def release_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("release")
    (out / ".git").mkdir()  # a student repository published before: the release must keep its history
    (out / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    done = subprocess.run([sys.executable, "-m", "grader", "release", "--repo", "myuni/cl-2026", "--branch", "spring",
                           "--out", str(out)], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return out


def test_release_holds_no_solution_text(release_dir):
    secrets = rel.secrets_of()
    assert len(secrets) > 100  # the notebook's solutions, hidden tests and quiz key, and the package's
    assert rel.leaks(release_dir, secrets) == []
    # the search finds them where they are
    assert rel.leaks(NOTEBOOKS, secrets)
    texts = dict(rel.release_texts(release_dir))
    assert {"README.md", ".gitignore", *STUDENT_NOTEBOOKS, "demo_forgetting_curves.ipynb"} <= set(texts)
    assert not any("### BEGIN SOLUTION" in t or "### BEGIN HIDDEN TESTS" in t for t in texts.values())
    stubs = texts[f"{next(release_dir.glob('*.whl')).name}:cl_course/importance.py"]
    regions = (ROOT / "cl_course" / "importance.py").read_text().count("### BEGIN SOLUTION")
    assert stubs.count("raise NotImplementedError(") == regions == 7
    # the teaching layer's typical mistakes are solutions too (each is a line or two from the answer): searched for,
    # and in the wheel stubbed (no region is left anywhere, above)
    wheel = next(release_dir.glob("*.whl")).name
    for module in ("mistakes", "replay_mistakes"):
        lines = rel.solution_lines((ROOT / "cl_course" / "teaching" / f"{module}.py").read_text())
        assert len(lines) > 50 and lines <= secrets and f"{wheel}:cl_course/teaching/{module}.py" in texts


def test_student_source_stubs_each_region_with_its_function_name():
    source = ("def f(x):\n    \"\"\"doc\"\"\"\n    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION\n\n\n"
              "def g():\n    pass\n")
    stubbed = rel.student_source(source)
    assert 'raise NotImplementedError("f is written in the notebook' in stubbed and "return x" not in stubbed
    assert stubbed.endswith("\n\ndef g():\n    pass\n")


def test_named_stubs_say_what_each_solution_region_stands_for():
    source = ('class A(Base):\n    size = 1\n\n    def f(self, y):\n        """doc"""\n        ### BEGIN SOLUTION\n'
              "        return y + self.size\n        ### END SOLUTION\n\n    def g(self):\n        ### BEGIN SOLUTION\n"
              "        return 2\n        ### END SOLUTION\n\n\ndef h():\n    ### BEGIN SOLUTION\n    return 3\n"
              "    ### END SOLUTION")
    stubbed = stubs.named_stubs(source)
    assert "return y + self.size" not in stubbed and stubbed.count("# YOUR CODE HERE") == 3
    namespace = {"Base": object}
    exec(stubbed, namespace)
    for call, name in ((lambda: namespace["A"]().f(1), "A.f"), (lambda: namespace["A"]().g(), "A.g"),
                       (namespace["h"], "h")):
        with pytest.raises(NotImplementedError) as raised:
            call()
        assert str(raised.value) == f"{name} is not written yet: write its body here, in place of this line"
    quiz = "# Answer q01, q02: each a set\n### BEGIN SOLUTION\nq01 = {'a'}\nq02 = {'b', 'c'}\n### END SOLUTION\n"
    with pytest.raises(NotImplementedError) as raised:
        exec(stubs.named_stubs(quiz), {})
    assert str(raised.value) == 'answer q01, q02 here, in place of this line: each a set of option letters, e.g. ' \
                                'q01 = {"a", "c"}'
    with pytest.raises(NotImplementedError, match="^write your answer here, in place of this line$"):
        exec(stubs.named_stubs("### BEGIN SOLUTION\nanswer = 42\n### END SOLUTION\n"), {})
    hidden = "x = 1\n### BEGIN HIDDEN TESTS\nassert x\n### END HIDDEN TESTS\n"
    assert stubs.named_stubs(hidden) == hidden  # ClearHiddenTests' business, later


def stub_messages(cell):
    """The messages of the `raise NotImplementedError(...)` statements in a cell."""
    return [node.exc.args[0].value if node.exc.args else None for node in ast.walk(ast.parse(cell.source))
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call)
            and getattr(node.exc.func, "id", None) == "NotImplementedError"]


def test_every_released_stub_says_in_one_line_what_to_write(release_dir):
    for name in STUDENT_NOTEBOOKS:
        source = {grade_id(c): c.source for c in nbformat.read(NOTEBOOKS / name, as_version=4).cells}
        solutions = [c for c in nbformat.read(release_dir / name, as_version=4).cells
                     if c.metadata.get("nbgrader", {}).get("solution")]
        assert solutions
        for cell in solutions:
            messages = stub_messages(cell)
            regions = source[grade_id(cell)].count("### BEGIN SOLUTION")
            assert len(messages) == regions and all(m and "\n" not in m for m in messages), (grade_id(cell), messages)
            questions = re.findall(r"^(q\d\d) =", source[grade_id(cell)], re.M)
            if questions:  # a quiz cell: its stub names every question it answers
                assert messages == [f"answer {', '.join(questions)} here, in place of this line: each a set of "
                                    f'option letters, e.g. {questions[0]} = {{"a", "c"}}']
            else:  # a function or class: its name, and the method's
                assert all(m.startswith(grade_id(cell)) and "is not written yet" in m for m in messages), messages


def test_the_released_demo_leaves_out_what_needs_the_instructors_edition(release_dir):
    source = nbformat.read(NOTEBOOKS / "demo_forgetting_curves.ipynb", as_version=4)
    released = nbformat.read(release_dir / "demo_forgetting_curves.ipynb", as_version=4)
    live = [c.id for c in source.cells if rel.INSTRUCTOR_ONLY in c.metadata.get("tags", [])]
    assert live and all("instructor's edition" in c.source for c in source.cells if c.id in live)
    assert [c.id for c in released.cells] == [c.id for c in source.cells if c.id not in live]
    assert any(c.source.startswith("**Suggested path through the lecture.**") for c in released.cells)


def test_the_demo_is_shown_unscrolled_in_the_classic_notebook(release_dir):
    # notebook 6.5's OutputArea.fromJSON: metadata.scrolled false turns its auto-scroll (a box past 100 lines) off
    for folder in (NOTEBOOKS, release_dir):
        nb = nbformat.read(folder / "demo_forgetting_curves.ipynb", as_version=4)
        (widget,) = [c for c in nb.cells if c.cell_type == "code" and "ForgettingDemo()" in c.source]
        assert widget.metadata.get("scrolled") is False


@pytest.mark.parametrize("args,message", [
    (["relase"], "invalid choice"),
    (["release"], "--repo OWNER/NAME"),
    (["release", "--repo", "https://github.com/myuni/cl"], "is not a GitHub OWNER/NAME"),
    (["release", "--repo", "myuni/cl", "--branch", "a b"], "is not a branch name"),
])
def test_release_command_errors_are_one_line(args, message, tmp_path):
    done = subprocess.run([sys.executable, "-m", "grader", *args, "--out", str(tmp_path / "out")], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode in (1, 2) and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert message in done.stderr, done.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_the_student_repository_is_complete_and_points_only_into_itself(release_dir):
    notebooks = [*STUDENT_NOTEBOOKS, "demo_forgetting_curves.ipynb"]
    assert sorted(p.name for p in release_dir.iterdir()) == sorted([
        ".git", ".gitignore", "README.md", "cl_course-0.1.0-py3-none-any.whl", *notebooks])
    assert (release_dir / ".git" / "HEAD").exists()  # an earlier publish's history is kept
    texts = dict(rel.release_texts(release_dir))
    links = {u for name in ("README.md", *notebooks) for u in re.findall(r"https?://[^\s\"')\]]+", texts[name])}
    for url in links - {"https://colab.research.google.com/assets/colab-badge.svg"}:
        into_repo = re.fullmatch(r"https://colab\.research\.google\.com/github/myuni/cl-2026/blob/spring/(.+)", url) \
            or re.fullmatch(r"https://raw\.githubusercontent\.com/myuni/cl-2026/spring/(.+)", url)
        assert into_repo and (release_dir / into_repo[1]).is_file(), url
    wheel = "https://raw.githubusercontent.com/myuni/cl-2026/spring/cl_course-0.1.0-py3-none-any.whl"
    for name in notebooks:
        setup = next(c.source for c in nbformat.read(release_dir / name, as_version=4).cells
                     if "COURSE_WHEEL = " in c.source)
        assert f'COURSE_WHEEL = "{wheel}"' in setup and f'COURSE_VERSION = "{cl_course.__version__}"' in setup
        assert f"blob/spring/{name}" in texts[name]
        assert f"https://colab.research.google.com/github/myuni/cl-2026/blob/spring/{name})" in texts["README.md"]
    assert "File > Download > Download .ipynb" in texts["README.md"]
    readme = " ".join(texts["README.md"].split())  # nothing is saved in the notebook Colab opens: say so first
    assert readme.index("nothing you do in it is saved") < readme.index("File > Save a copy in Drive") < \
        readme.index("Run the first cell")


def test_the_instructors_wheel_is_beside_the_student_repository_never_in_it(release_dir):
    instructor = release_dir.with_name(release_dir.name + "-instructor")
    assert sorted(p.name for p in instructor.iterdir()) == ["INSTALL.md", "cl_course-0.1.0-py3-none-any.whl"]
    with zipfile.ZipFile(instructor / "cl_course-0.1.0-py3-none-any.whl") as z:
        full = z.read("cl_course/importance.py").decode()
        assert 'EDITION = "instructor"' in z.read("cl_course/__init__.py").decode()
    assert "### BEGIN SOLUTION" in full and "per_sample_gradient_sums" in full
    assert "!pip install -q --force-reinstall --no-deps /content/cl_course-0.1.0-py3-none-any.whl" in \
        (instructor / "INSTALL.md").read_text()


def test_a_stray_file_with_a_solution_stops_the_release_and_nothing_is_lost(tmp_path):
    out = tmp_path / "students"
    out.mkdir()
    (out / "notes.py").write_text((ROOT / "cl_course" / "importance.py").read_text())  # copied in by mistake
    done = subprocess.run([sys.executable, "-m", "grader", "release", "--repo", "myuni/cl", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1
    assert "solution code reached the release (notes.py: " in done.stderr
    assert "nothing is left to publish" in done.stderr
    assert [p.name for p in out.iterdir()] == ["notes.py"]  # the release's own files are gone, the user's file kept


def test_student_wheel_metadata(release_dir):
    wheel = next(release_dir.glob("cl_course-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
    assert "cl_course/selfcheck_values.json" in names and "cl_course/precomputed/hw14.json" in names
    # the layers' subpackages, which the notebooks import (cl_course.teaching.selfcheck, cl_course.lessons.notebook)
    assert {f"cl_course/{layer}/{m}.py" for layer, modules in (("teaching", ("__init__", "blanks", "selfcheck")),
                                                              ("lessons", ("__init__", "notebook", "lesson2")))
            for m in modules} <= set(names)
    assert not any(n.startswith(("grader/", "tests/", "notebooks/")) for n in names)
