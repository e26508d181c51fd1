"""The course folder, nbgrader's layout:

  nbgrader_config.py   gradebook.db
  source/hw14/         the instructor's notebook        release/hw14/   what students get
  submitted/<student>/hw14/    (collect)                autograded/<student>/hw14/   (autograde)
  feedback/<student>/hw14/     (feedback)               grading/<student>.json       why each score
  .student_site/       the student edition of cl_course that the sandbox imports
"""
import json
import os
import shutil
import sys
import zipfile
from pathlib import Path

from traitlets.config import Config, PyFileConfigLoader

from .parts import parts_of
from .release import ASSIGNMENT, STUDENT_NOTEBOOKS, build_wheel, generate_assignment, leaks

NOTEBOOK = STUDENT_NOTEBOOKS[0]
CONFIG = Path(__file__).with_name("nbgrader_config.py")


class CourseError(Exception):
    """The course folder is missing or incomplete; the message says which command to run."""


class Course:
    def __init__(self, root):
        self.root = Path(root).resolve()
        self.db_url = f"sqlite:///{self.root / 'gradebook.db'}"

    def path(self, *parts):
        return self.root.joinpath(*parts)

    @property
    def source_notebook(self):
        return self.path("source", ASSIGNMENT, NOTEBOOK)

    @property
    def release_notebook(self):
        return self.path("release", ASSIGNMENT, NOTEBOOK)

    @property
    def student_site(self):
        return self.path(".student_site")

    def submitted(self, student):
        return self.path("submitted", student, ASSIGNMENT, NOTEBOOK)

    def autograded(self, student):
        return self.path("autograded", student, ASSIGNMENT, NOTEBOOK)

    def log(self, student):
        return self.path("grading", f"{student}.json")

    def students(self):
        """Students with a collected submission, sorted."""
        return sorted(p.name for p in self.path("submitted").glob("*") if (p / ASSIGNMENT).is_dir())

    def require(self):
        if not self.path("gradebook.db").exists() or not self.release_notebook.exists():
            raise CourseError(f"{self.root} is not a set-up course folder: "
                              f"run `python -m grader setup {self.root}` first")
        return self

    def config(self):
        """nbgrader's Config: the folder's nbgrader_config.py, then where the folder is."""
        config = PyFileConfigLoader("nbgrader_config.py", path=str(self.root)).load_config() \
            if self.path("nbgrader_config.py").exists() else Config()
        config.CourseDirectory.root = str(self.root)
        config.CourseDirectory.db_url = self.db_url
        return config

    @property
    def course_id(self):
        directory = self.config().CourseDirectory
        return directory.course_id if "course_id" in directory else ""

    def parts(self):
        return parts_of(json.loads(self.source_notebook.read_text()))

    def release(self):
        return json.loads(self.release_notebook.read_text())


def alembic_on_path():
    # nbgrader's Gradebook runs `alembic` from PATH: make it this Python's
    bindir = str(Path(sys.executable).parent)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")


def setup(root):
    """Create (or refresh) the course folder: config, gradebook with the assignment, the released
    notebook and student wheel, and the student edition unpacked for the sandbox."""
    course = Course(root)
    course.root.mkdir(parents=True, exist_ok=True)
    if not course.path("nbgrader_config.py").exists():
        shutil.copy(CONFIG, course.path("nbgrader_config.py"))
    alembic_on_path()
    released = generate_assignment(course.root, course.db_url)
    shutil.rmtree(course.path(".build"), ignore_errors=True)
    wheel = build_wheel(course.path(".build"), released)
    shutil.rmtree(course.path(".build"), ignore_errors=True)
    shutil.rmtree(course.student_site, ignore_errors=True)
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(course.student_site)
    found = leaks(released)
    if found:
        raise CourseError(f"solution code reached the release ({found[0][0]}: {found[0][1]!r})")
    course.parts()  # every test cell must be one the grader can judge
    return course
