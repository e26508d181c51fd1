"""The notebooks end to end: the source notebooks run in the quick profile with every self-check
passing; the release holds no solution; the student wheel installs into a fresh virtual environment
from the released notebook's first cell; and the released notebook fails cleanly, part by part."""
import json
import os
import re
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from grader import release as rel

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
METHOD_ANSWERS = {"ewc": "fisher_diagonal", "mas": "mas_importance", "si": "si_path_step", "rwalk": "rwalk_score",
                  "scp": "scp_importance"}


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
    return {i: o for i, c in enumerate(nb.cells) if c.cell_type == "code" for o in c.outputs if o.output_type == "error"}


def text(cell):
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


def grade_id(cell):
    return cell.metadata.get("nbgrader", {}).get("grade_id")


@pytest.fixture(scope="module")
def quick_env(data_root):
    return {"CL_COURSE_PROFILE": "quick", "CL_COURSE_DATA": str(Path(data_root).resolve())}


def test_source_notebook_runs_in_the_quick_profile_with_every_check_passing(tmp_path, quick_env):
    nb = execute(NOTEBOOKS / "hw14_lifelong_learning.ipynb", tmp_path, env=quick_env)
    assert not errors(nb), {i: (e.ename, e.evalue) for i, e in errors(nb).items()}
    stderr = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"
              for o in c.outputs if o.output_type == "stream" and o.name == "stderr"]
    assert not stderr, f"cells {stderr} wrote to stderr (nbgrader zeroes graded cells that do)"
    checks = [c for c in nb.cells if (grade_id(c) or "").startswith("check_")]
    assert len(checks) == 6 and all("parameters match" in text(c) for c in checks)
    quiz = [c for c in nb.cells if re.fullmatch(r"q\d\d", grade_id(c) or "")]
    assert len(quiz) == 25 and all("answer recorded" in text(c) for c in quiz)
    setup = text(nb.cells[3])
    assert "profile quick: 5 tasks x 2 epochs" in setup
    table = next(o.data["text/markdown"] for c in nb.cells if c.cell_type == "code" for o in c.outputs
                 if "text/markdown" in o.get("data", {}))
    assert "not trained" not in table and "| ewc |" in table


def test_source_notebooks_have_nbgrader_metadata_and_no_outputs():
    for path in NOTEBOOKS.glob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), f"{path.name} has outputs"
        assert "colab-badge.svg" in nb.cells[0].source, f"{path.name} has no Open in Colab badge"
    nb = nbformat.read(NOTEBOOKS / "hw14_lifelong_learning.ipynb", as_version=4)
    ids = [grade_id(c) for c in nb.cells if grade_id(c)]
    assert len(ids) == len(set(ids))
    graded = [c.metadata.nbgrader for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
    assert sum(m["points"] for m in graded) == 13 + 25 and all(m["locked"] for m in graded)


def test_demo_notebook_runs(tmp_path, quick_env):
    nb = execute(NOTEBOOKS / "demo_forgetting_curves.ipynb", tmp_path, env=quick_env | {"XDG_CACHE_HOME": str(tmp_path)})
    assert not errors(nb)
    widget = next(o for o in nb.cells[2].outputs if o.output_type == "execute_result")
    assert "application/vnd.jupyter.widget-view+json" in widget.data


@pytest.fixture(scope="module")
def release_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("release")
    done = subprocess.run([sys.executable, "-m", "grader", "release", "--out", str(out)], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return out


def test_release_holds_no_solution_text(release_dir):
    secrets = rel.secrets_of()
    assert len(secrets) > 100  # the notebook's solutions, hidden tests and quiz key, and the package's
    assert rel.leaks(release_dir, secrets) == []
    # the search finds them where they are
    assert rel.leaks(NOTEBOOKS, secrets)
    texts = dict(rel.release_texts(release_dir))
    code = {n: t for n, t in texts.items() if not n.endswith("METADATA")}  # METADATA: the README, which names the markers
    assert not any("### BEGIN SOLUTION" in t or "### BEGIN HIDDEN TESTS" in t for t in code.values())
    stubs = texts[f"{next(release_dir.glob('*.whl')).name}:cl_course/importance.py"]
    assert stubs.count("raise NotImplementedError(") == (ROOT / "cl_course" / "importance.py").read_text().count("### BEGIN SOLUTION") == 7


def test_student_source_stubs_each_region_with_its_function_name():
    source = "def f(x):\n    \"\"\"doc\"\"\"\n    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION\n\n\ndef g():\n    pass\n"
    stubbed = rel.student_source(source)
    assert 'raise NotImplementedError("f is written in the notebook' in stubbed and "return x" not in stubbed
    assert stubbed.endswith("\n\ndef g():\n    pass\n")


def test_release_command_errors_are_one_line():
    done = subprocess.run([sys.executable, "-m", "grader", "relase"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1 and "invalid choice" in done.stderr


@pytest.fixture(scope="module")
def student_kernel(tmp_path_factory):
    """A fresh virtual environment without cl_course (torch and Jupyter come from this one through a .pth
    file instead of a download), registered as a kernel."""
    root = tmp_path_factory.mktemp("student")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "course_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    missing = subprocess.run([python, "-c", "import cl_course"], capture_output=True, text=True, cwd=root)
    assert missing.returncode != 0, "the fresh environment must not see the instructor's cl_course"
    spec = root / "jupyter" / "kernels" / "student"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({"argv": [str(python), "-m", "ipykernel_launcher", "-f",
                                                           "{connection_file}"],
                                                  "display_name": "student", "language": "python"}))
    return python, root / "jupyter"


def test_released_notebook_installs_the_wheel_and_fails_cleanly_part_by_part(release_dir, student_kernel, quick_env,
                                                                              tmp_path):
    python, jupyter_path = student_kernel
    for f in release_dir.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    nb = execute(tmp_path / "hw14_lifelong_learning.ipynb", tmp_path, kernel="student",
                 env=quick_env | {"JUPYTER_PATH": str(jupyter_path)})
    # the first cell installed the student wheel from beside the notebook
    assert 0 not in {i for i in errors(nb) if i <= 1}
    edition = subprocess.run([python, "-c", "import cl_course.importance as i; i.si_importance({}, {})"],
                             capture_output=True, text=True, cwd=tmp_path)
    assert "NotImplementedError: si_importance is written in the notebook" in edition.stderr
    failed = errors(nb)
    assert all(e.ename == "NotImplementedError" for e in failed.values()), \
        {i: (e.ename, e.evalue) for i, e in failed.items() if e.ename != "NotImplementedError"}
    expected = {i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (
        (grade_id(c) or "").startswith(("check_", "q")) or  # self-checks, quiz answers and their checks
        any(f'course.train("{m}"' in c.source for m in METHOD_ANSWERS))}
    assert set(failed) == expected
    for i in expected:  # each check names what to fill in
        if (grade_id(nb.cells[i]) or "").startswith("check_"):
            assert "is not written yet: fill in its cell above" in failed[i].evalue
    ran = [c for c in nb.cells if c.cell_type == "code" and c.outputs and not any(
        o.output_type == "error" for o in c.outputs)]
    assert any('course.train("baseline"' in c.source for c in ran)
    assert any("comparison_markdown" in c.source for c in ran)


def test_student_wheel_metadata(release_dir):
    wheel = next(release_dir.glob("cl_course-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
    assert "cl_course/selfcheck_values.json" in names and "cl_course/precomputed/hw14.json" in names
    assert not any(n.startswith(("grader/", "tests/", "notebooks/")) for n in names)
