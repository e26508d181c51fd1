"""`python -m grader release`: what students get, and nothing more.

  release/hw14_lifelong_learning.ipynb   nbgrader's generate_assignment: solutions and hidden tests
                                         stripped, outputs cleared, test cells locked
  release/cl_course-*.whl                the student edition of the package: every
                                         ### BEGIN SOLUTION region raises NotImplementedError

The release is then searched for every line of solution and hidden-test code; a hit is an error.
"""
import json
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = "hw14"
STUDENT_NOTEBOOKS = ("hw14_lifelong_learning.ipynb",)
WHEEL_LINE = re.compile(r'^COURSE_WHEEL = ".*"$', re.M)
REGION = re.compile(r"^(?P<indent>[ \t]*)### BEGIN (?P<kind>SOLUTION|HIDDEN TESTS)\n(?P<body>.*?)^[ \t]*### END (?P=kind)[ \t]*$\n?",
                    re.M | re.S)


class ReleaseError(Exception):
    """A release that must not go out; the message says why."""


def student_source(text):
    """A module's source with each solution region replaced by a NotImplementedError naming its function."""
    def stub(match):
        names = re.findall(r"^\s*def (\w+)\(", text[:match.start()], re.M)
        name = names[-1] if names else "this part"
        return f'{match["indent"]}raise NotImplementedError("{name} is written in the notebook; pass yours to ' \
               f'course.train")\n'
    return REGION.sub(stub, text)


def solution_lines(text):
    """The code lines inside solution and hidden-test regions: what must never reach students."""
    return {line.strip() for m in REGION.finditer(text) for line in m["body"].splitlines()
            if len(line.strip()) >= 12 and not line.strip().startswith("#")}


def notebook_sources(path):
    return "\n".join("".join(c["source"]) for c in json.loads(Path(path).read_text())["cells"])


def secrets_of(notebooks=None, package=ROOT / "cl_course"):
    """Every solution line of the source notebooks and of the package."""
    lines = set()
    for nb in notebooks or [ROOT / "notebooks" / n for n in STUDENT_NOTEBOOKS]:
        lines |= solution_lines(notebook_sources(nb) + "\n")
    for py in Path(package).rglob("*.py"):
        lines |= solution_lines(py.read_text())
    return lines


def release_texts(out):
    """(name, text) of every file students get: notebooks' cells, and each text file in each wheel."""
    for path in sorted(Path(out).iterdir()):
        if path.suffix == ".ipynb":
            yield path.name, notebook_sources(path)
        elif path.suffix == ".whl":
            with zipfile.ZipFile(path) as wheel:
                for name in wheel.namelist():
                    try:
                        yield f"{path.name}:{name}", wheel.read(name).decode()
                    except UnicodeDecodeError:
                        continue


def leaks(out, secrets=None):
    """[(file, line)] for every solution line found in the release under `out`."""
    secrets = secrets_of() if secrets is None else secrets
    return [(name, line) for name, text in release_texts(out) for line in sorted(secrets) if line in text]


def generate_assignment(root, db_url=None):
    """nbgrader generate_assignment in the course folder `root`: notebooks/ -> source/ -> release/.
    With a gradebook (`db_url`) the assignment, its cells and their checksums are recorded in it."""
    from nbgrader.converters import GenerateAssignment
    from traitlets.config import Config

    source = Path(root) / "source" / ASSIGNMENT
    source.mkdir(parents=True, exist_ok=True)
    for name in STUDENT_NOTEBOOKS:
        shutil.copy(ROOT / "notebooks" / name, source / name)
    config = Config()
    config.CourseDirectory.root = str(root)
    config.CourseDirectory.assignment_id = ASSIGNMENT
    if db_url:
        config.CourseDirectory.db_url = db_url
    else:
        config.GenerateAssignment.no_database = True
        config.SaveCells.enabled = False
    config.GenerateAssignment.force = True
    run_converter(GenerateAssignment, config)
    return Path(root) / "release" / ASSIGNMENT


def run_converter(converter_class, config):
    """One of nbgrader's converters (generate_assignment, generate_feedback...) on `config`, quietly."""
    from nbgrader.coursedir import CourseDirectory
    converter = converter_class(coursedir=CourseDirectory(config=config), config=config)
    converter.log.setLevel("ERROR")
    converter.start()


def generate_notebooks(workdir, out, wheel_url=None):
    """The student notebooks, generated without a gradebook, into `out`."""
    released = generate_assignment(workdir)
    for name in STUDENT_NOTEBOOKS:
        nb = nbformat.read(released / name, as_version=4)
        if wheel_url:
            for cell in nb.cells:
                cell.source = WHEEL_LINE.sub(f"COURSE_WHEEL = {json.dumps(wheel_url)}", cell.source)
        nbformat.write(nb, out / name)


def build_wheel(workdir, out):
    """The student edition: the package with its solution regions stubbed, built into `out`."""
    build = workdir / "student"
    shutil.copytree(ROOT / "cl_course", build / "cl_course", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, build / name)
    for py in (build / "cl_course").rglob("*.py"):
        py.write_text(student_source(py.read_text()))
    for old in out.glob("cl_course-*.whl"):
        old.unlink()
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(out), str(build)], capture_output=True, text=True)
    if done.returncode:
        raise ReleaseError(f"building the student wheel failed: {done.stderr.strip().splitlines()[-1:]}")
    return next(out.glob("cl_course-*.whl"))


def release(out="release", wheel_url=None):
    """Write the student notebooks and the student wheel into `out`; return the files written."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        generate_notebooks(Path(tmp), out, wheel_url)
        wheel = build_wheel(Path(tmp), out)
    found = leaks(out)
    if found:
        name, line = found[0]
        raise ReleaseError(f"solution code reached the release ({name}: {line!r}); nothing was published")
    return [out / n for n in STUDENT_NOTEBOOKS] + [wheel]
