"""`python -m grader release --repo OWNER/NAME`: the students' public repository, and nothing more.

  release/                              a complete repository to publish as OWNER/NAME
    README.md, .gitignore               what to do, how to open each notebook in Colab, how to submit
    <each assignment's notebook>.ipynb  nbgrader's generate_assignment, for every assignment in
                                        assignments.py whose notebook is written: solutions and
                                        hidden tests stripped (each solution's stub says what to
                                        write there), outputs cleared, test cells locked
    demo_forgetting_curves.ipynb        the demo; with the student wheel it shows the shipped runs (its
                                        cells tagged instructor-only, on training live, left out)
    cl_course-<version>-py3-none-any.whl   the student edition: every ### BEGIN SOLUTION region of
                                        the package raises NotImplementedError
  release-instructor/                   beside it, never published: the full package as a wheel, and
                                        how to install it on Colab to run the demo live

Every badge and install address in the notebooks points into OWNER/NAME at the branch (the wheel at
its raw-file address, with its version in the name). Every file of the student folder is then
searched for every line of solution and hidden-test code of every assignment and of the package; a
hit is an error and nothing is left to publish.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import nbformat

from . import assignments
from .assignments import notebook_of, source_of, written

if TYPE_CHECKING:
    from nbgrader.converters.base import BaseConverter
    from traitlets.config import Config

StrPath = str | Path  # a path as a caller may pass it: each function here makes it a Path

ROOT = Path(__file__).resolve().parents[1]
DEMO_NOTEBOOKS = ("demo_forgetting_curves.ipynb",)  # released as they are, outputs cleared
INSTRUCTOR_ONLY = "instructor-only"  # the tag of a demo cell about what the student edition cannot do
REPO = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}")
WHEEL_LINE = re.compile(r'^COURSE_WHEEL = ".*"$', re.M)
BADGE = re.compile(r"https://colab\.research\.google\.com/github/[^/\s)]+/[^/\s)]+/blob/[^/\s)]+/")
EDITION_LINE = re.compile(r'^EDITION = "instructor"', re.M)
REGION = re.compile(r"^(?P<indent>[ \t]*)### BEGIN (?P<kind>SOLUTION|HIDDEN TESTS)\n"
                    r"(?P<body>.*?)^[ \t]*### END (?P=kind)[ \t]*$\n?", re.M | re.S)
STUDENT_README = Path(__file__).with_name("student_readme.md")
GITIGNORE = ".ipynb_checkpoints/\n__pycache__/\ndata/\n"


class ReleaseError(Exception):
    """A release that must not go out; the message says why."""


def student_source(text: str) -> str:
    """A module's source with each solution region replaced by a NotImplementedError naming its function,
    and the edition flag set to "student"."""
    def stub(match: re.Match[str]) -> str:
        names = re.findall(r"^\s*def (\w+)\(", text[:match.start()], re.M)
        name = names[-1] if names else "this part"
        return f'{match["indent"]}raise NotImplementedError("{name} is written in the notebook; pass yours to ' \
               f'course.train")\n'
    return EDITION_LINE.sub('EDITION = "student"', REGION.sub(stub, text))


def solution_lines(text: str) -> set[str]:
    """The code lines inside solution and hidden-test regions: what must never reach students."""
    return {line.strip() for m in REGION.finditer(text) for line in m["body"].splitlines()
            if len(line.strip()) >= 12 and not line.strip().startswith("#")}


def notebook_sources(path: StrPath) -> str:
    return "\n".join("".join(c["source"]) for c in json.loads(Path(path).read_text())["cells"])


def secrets_of(notebooks: Sequence[StrPath] | None = None, package: StrPath = ROOT / "cl_course") -> set[str]:
    """Every solution line of the source notebooks (default: every assignment's that is written) and of the
    package."""
    lines = set()
    for nb in notebooks or [source_of(name) for name in written()]:
        lines |= solution_lines(notebook_sources(nb) + "\n")
    for py in Path(package).rglob("*.py"):
        lines |= solution_lines(py.read_text())
    return lines


def release_texts(out: StrPath) -> Iterator[tuple[str, str]]:
    """(name, text) of every file under `out` (but .git): notebooks' cells, each file in each wheel,
    and every other file as text."""
    for path in sorted(p for p in Path(out).rglob("*") if p.is_file() and ".git" not in p.relative_to(out).parts):
        name = str(path.relative_to(out))
        if path.suffix == ".ipynb":
            yield name, notebook_sources(path)
        elif path.suffix == ".whl":
            with zipfile.ZipFile(path) as wheel:
                for member in wheel.namelist():
                    yield f"{name}:{member}", wheel.read(member).decode(errors="replace")
        else:
            yield name, path.read_bytes().decode(errors="replace")


def leaks(out: StrPath, secrets: set[str] | None = None) -> list[tuple[str, str]]:
    """[(file, line)] for every solution line found in the release under `out`."""
    secrets = secrets_of() if secrets is None else secrets
    return [(name, line) for name, text in release_texts(out) for line in sorted(secrets) if line in text]


def generate_assignment(root: StrPath, name: str, db_url: str | None = None) -> Path:
    """nbgrader generate_assignment of assignment `name` in the course folder `root`: notebooks/ ->
    source/<name>/ -> release/<name>/. With a gradebook (`db_url`) the assignment, its cells and their
    checksums are recorded in it."""
    from nbgrader.converters import GenerateAssignment
    from nbgrader.preprocessors import ClearSolutions
    from traitlets.config import Config

    from .stubs import ClearSolutionsNamingWhatToWrite

    source = Path(root) / "source" / name
    source.mkdir(parents=True, exist_ok=True)
    shutil.copy(source_of(name), source / notebook_of(name))
    config = Config()
    config.CourseDirectory.root = str(root)
    config.CourseDirectory.assignment_id = name
    if db_url:
        config.CourseDirectory.db_url = db_url
    else:
        config.GenerateAssignment.no_database = True
        config.SaveCells.enabled = False
    config.GenerateAssignment.force = True
    # every stub says what to write in its place (nbgrader's all say `raise NotImplementedError()`)
    config.GenerateAssignment.preprocessors = [ClearSolutionsNamingWhatToWrite if p is ClearSolutions else p
                                               for p in GenerateAssignment.class_traits()["preprocessors"].default()]
    run_converter(GenerateAssignment, config)
    return Path(root) / "release" / name


def run_converter(converter_class: type[BaseConverter], config: Config) -> None:
    """One of nbgrader's converters (generate_assignment, generate_feedback...) on `config`, quietly."""
    from nbgrader.coursedir import CourseDirectory
    converter = converter_class(coursedir=CourseDirectory(config=config), config=config)
    converter.log.setLevel("ERROR")
    converter.start()


def point_at(nb: nbformat.NotebookNode, repo: str, branch: str, wheel_url: str) -> nbformat.NotebookNode:
    """Badges and the install address of a notebook, pointed into the student repository."""
    for cell in nb.cells:
        cell.source = BADGE.sub(f"https://colab.research.google.com/github/{repo}/blob/{branch}/", cell.source)
        cell.source = WHEEL_LINE.sub(f"COURSE_WHEEL = {json.dumps(wheel_url)}", cell.source)
    return nb


def generate_notebooks(workdir: StrPath, out: StrPath, links: tuple[str, str, str] | None = None,
                       names: Sequence[str] | None = None) -> list[str]:
    """The student notebooks of assignments `names` (default: every one written), generated without a
    gradebook, and the demo notebooks, into `out`; `links` = (repo, branch, wheel_url) points their badges
    and install address at the student repository. Returns the file names written."""
    paths = [generate_assignment(workdir, name) / notebook_of(name) for name in names or written()]
    paths += [assignments.NOTEBOOKS / name for name in DEMO_NOTEBOOKS]
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        if path.name in DEMO_NOTEBOOKS:
            nb.cells = [c for c in nb.cells if INSTRUCTOR_ONLY not in c.metadata.get("tags", [])]
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
        nbformat.write(point_at(nb, *links) if links else nb, Path(out) / path.name)
    return [path.name for path in paths]


def build_wheel(workdir: StrPath, out: StrPath, student: bool = True) -> Path:
    """The package as a wheel in `out`: the student edition (solution regions stubbed) unless student=False."""
    build = Path(workdir) / ("student" if student else "instructor")
    shutil.copytree(ROOT / "cl_course", build / "cl_course", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", build / "pyproject.toml")
    shutil.copy(ROOT / "README.md", build / "README.md")  # the wheel's description
    if student:  # the instructor's README describes grading: the students' wheel gets a line of its own
        (build / "README.md").write_text("# cl_course, student edition\n\nThe course package for the continual "
                                         "learning notebooks; the functions you write are written in the notebook.\n")
        for py in (build / "cl_course").rglob("*.py"):
            py.write_text(student_source(py.read_text()))
    for old in Path(out).glob("cl_course-*.whl"):
        old.unlink()
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(out), str(build)], capture_output=True, text=True)
    if done.returncode:
        raise ReleaseError(f"building the {build.name} wheel failed: {done.stderr.strip().splitlines()[-1:]}")
    return next(Path(out).glob("cl_course-*.whl"))


def wheel_name() -> str:
    from cl_course import __version__
    return f"cl_course-{__version__}-py3-none-any.whl"


def raw_url(repo: str, branch: str, name: str) -> str:
    return f"https://raw.githubusercontent.com/{repo}/{branch}/{name}"


def title_of(path: StrPath) -> str:
    """A notebook's first markdown heading, without its #s; else its file name."""
    for cell in json.loads(Path(path).read_text())["cells"]:
        heading = re.search(r"^#+\s+(.+)$", "".join(cell["source"]), re.M) if cell["cell_type"] == "markdown" else None
        if heading:
            return heading[1].strip()
    return Path(path).name


def student_readme(repo: str, branch: str, wheel: Path, notebooks: Sequence[Path]) -> str:
    """The template filled in; its lines holding {NOTEBOOK} are repeated for each of the student
    `notebooks` (paths), in course order, with {TITLE} its heading."""
    lines = []
    for line in STUDENT_README.read_text().splitlines(keepends=True):
        lines += [line.replace("{NOTEBOOK}", nb.name).replace("{TITLE}", title_of(nb)) for nb in notebooks] \
            if "{NOTEBOOK}" in line else [line]
    text = "".join(lines)
    for key, value in {"REPO": repo, "BRANCH": branch, "WHEEL": wheel.name,
                       "WHEEL_URL": raw_url(repo, branch, wheel.name)}.items():
        text = text.replace("{" + key + "}", value)
    return text


def instructor_folder(out: StrPath) -> Path:
    return Path(out).resolve().with_name(Path(out).resolve().name + "-instructor")


def release(out: StrPath = "release", repo: str | None = None, branch: str = "main",
            wheel_url: str | None = None) -> tuple[list[Path], list[Path]]:
    """Write the student repository into `out` and the instructor's wheel beside it; return
    (student files, instructor files)."""
    if not repo:
        raise ReleaseError("say which public repository the students' notebooks will live in: --repo OWNER/NAME "
                           "(e.g. --repo myuni/cl-course-2026; with make: make release REPO=OWNER/NAME)")
    if not REPO.fullmatch(repo):
        raise ReleaseError(f"--repo {repo!r} is not a GitHub OWNER/NAME such as myuni/cl-course-2026")
    if not re.fullmatch(r"[A-Za-z0-9._/-]+", branch) or ".." in branch:
        raise ReleaseError(f"--branch {branch!r} is not a branch name such as main")
    out, instructor = Path(out), instructor_folder(out)
    out.mkdir(parents=True, exist_ok=True)
    if (out / "cl_course").exists() or (out / "grader").exists():
        raise ReleaseError(f"{out} holds the course's source (cl_course/ or grader/): choose an empty folder for --out")
    url = wheel_url or raw_url(repo, branch, wheel_name())
    with tempfile.TemporaryDirectory() as tmp:
        notebooks = generate_notebooks(Path(tmp) / "course", out, (repo, branch, url))
        wheel = build_wheel(tmp, out)
        instructor.mkdir(exist_ok=True)
        full = build_wheel(tmp, instructor, student=False)
    (out / "README.md").write_text(student_readme(repo, branch, wheel, [out / notebook_of(a) for a in written()]))
    (out / ".gitignore").write_text(GITIGNORE)
    (instructor / "INSTALL.md").write_text(
        f"# The instructor's edition of cl_course (do not publish)\n\n{full.name} is the full package: the demo "
        "trains live with it. On Colab, upload it with the Files pane (the folder icon on the left), then run in a "
        f"cell:\n\n    !pip install -q --force-reinstall --no-deps /content/{full.name}\n\nand restart the session "
        "(Runtime > Restart session) if cl_course was imported before. Anywhere else: "
        f"`pip install {full.name}`.\n")
    found = leaks(out)
    if found:
        name, line = found[0]
        for path in [out / n for n in [*notebooks, "README.md", ".gitignore"]] + [wheel]:
            path.unlink(missing_ok=True)
        raise ReleaseError(f"solution code reached the release ({name}: {line!r}); it was removed, nothing is left "
                           "to publish")
    students = [out / n for n in notebooks] + [wheel, out / "README.md", out / ".gitignore"]
    return students, [full, instructor / "INSTALL.md"]
