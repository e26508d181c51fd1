"""The course folder, nbgrader's layout, with a folder per assignment (assignments.py):

  nbgrader_config.py   gradebook.db (every assignment)
  source/<assignment>/   the instructor's notebook      release/<assignment>/   what students get
  submitted/<student>/<assignment>/   (collect)         autograded/<student>/<assignment>/   (autograde)
  feedback/<student>/<assignment>/    (feedback)        grading/<assignment>/<student>.json   why each score
  .student_site/       the student edition of cl_course that the sandbox imports
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from traitlets.config import Config, PyFileConfigLoader

from .assignments import DEFAULT, notebook_of, source_of, written
from .parts import Part, parts_of
from .release import build_wheel, generate_assignment, leaks, secrets_of

CONFIG = Path(__file__).with_name("nbgrader_config.py")
Notebook = dict[str, Any]  # a notebook as json reads it


class CourseError(Exception):
    """The course folder is missing or incomplete; the message says which command to run."""


class Course:
    """The course folder at `root`, seen from one of its assignments."""

    def __init__(self, root: str | Path, assignment: str = DEFAULT):
        self.root = Path(root).resolve()
        self.db_url = f"sqlite:///{self.root / 'gradebook.db'}"
        self.assignment, self.notebook = assignment, notebook_of(assignment)

    def path(self, *parts: str) -> Path:
        return self.root.joinpath(*parts)

    @property
    def source_notebook(self) -> Path:
        return self.path("source", self.assignment, self.notebook)

    @property
    def release_notebook(self) -> Path:
        return self.path("release", self.assignment, self.notebook)

    @property
    def student_site(self) -> Path:
        return self.path(".student_site")

    def submitted(self, student: str) -> Path:
        return self.path("submitted", student, self.assignment, self.notebook)

    def autograded(self, student: str) -> Path:
        return self.path("autograded", student, self.assignment, self.notebook)

    def log(self, student: str) -> Path:
        return self.path("grading", self.assignment, f"{student}.json")

    def students(self) -> list[str]:
        """Students with a collected submission, sorted."""
        return sorted(p.name for p in self.path("submitted").glob("*") if (p / self.assignment).is_dir())

    def require(self) -> Course:
        """This course, once setup has made its assignment; else a CourseError saying what to run."""
        if not self.path("gradebook.db").exists():
            raise CourseError(f"{self.root} is not a set-up course folder: "
                              f"run `python -m grader setup {self.root}` first")
        if not self.release_notebook.exists():
            source_of(self.assignment)  # a notebook not written yet is the reason, and says so
            raise CourseError(f"{self.root} has no assignment {self.assignment} yet: "
                              f"run `python -m grader setup {self.root}` again")
        return self

    def config(self) -> Config:
        return nbgrader_config(self.root)

    @property
    def course_id(self) -> str:
        directory = self.config().CourseDirectory
        return directory.course_id if "course_id" in directory else ""

    def parts(self) -> list[Part]:
        return parts_of(json.loads(self.source_notebook.read_text()))

    def release(self) -> Notebook:
        return json.loads(self.release_notebook.read_text())


def nbgrader_config(root: str | Path) -> Config:
    """nbgrader's Config of the course folder `root`: its nbgrader_config.py, then where the folder is."""
    root = Path(root).resolve()
    config = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config() \
        if (root / "nbgrader_config.py").exists() else Config()
    config.CourseDirectory.root = str(root)
    config.CourseDirectory.db_url = f"sqlite:///{root / 'gradebook.db'}"
    return config


def alembic_on_path() -> None:
    # nbgrader's Gradebook runs `alembic` from PATH: make it this Python's
    bindir = str(Path(sys.executable).parent)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")


def setup(root: str | Path, names: Sequence[str] | None = None) -> list[Course]:
    """Create (or refresh) the course folder: config, the gradebook with assignments `names` (default:
    every one whose notebook is written), their released notebooks each beside the student wheel, and
    the student edition unpacked for the sandbox. Returns [Course], one per assignment."""
    courses = [Course(root, name) for name in names or written()]
    for course in courses:
        source_of(course.assignment)  # before anything is written
    course = courses[0]  # the folder's own paths are every assignment's
    course.root.mkdir(parents=True, exist_ok=True)
    if not course.path("nbgrader_config.py").exists():
        shutil.copy(CONFIG, course.path("nbgrader_config.py"))
    alembic_on_path()
    released = [generate_assignment(c.root, c.assignment, c.db_url) for c in courses]
    build = course.path(".build")
    shutil.rmtree(build, ignore_errors=True)
    wheel = build_wheel(build, build)
    for folder in released:
        shutil.copy(wheel, folder)
    shutil.rmtree(course.student_site, ignore_errors=True)
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(course.student_site)
    shutil.rmtree(build, ignore_errors=True)
    secrets = secrets_of()
    found = [hit for folder in released for hit in leaks(folder, secrets)]
    if found:
        raise CourseError(f"solution code reached the release ({found[0][0]}: {found[0][1]!r})")
    for c in courses:
        c.parts()  # every test cell must be one the grader can judge
    return courses
