"""The course's graded assignments, in course order: the one table every command reads.

Each is an nbgrader assignment named by its key, made from one student notebook in notebooks/
(its source, with solutions and hidden tests). A notebook not written yet leaves its assignment
out of what is set up and released, and is an error only where that assignment is asked for.
"""
from pathlib import Path

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
ASSIGNMENTS = {
    "hw14": "hw14_lifelong_learning.ipynb",
    "lesson2": "lesson2_scenarios_and_replay.ipynb",
}
DEFAULT = next(iter(ASSIGNMENTS))  # commands written before there were several mean the first


class AssignmentError(Exception):
    """An assignment that is not in the table, or whose notebook is not written yet."""


def notebook_of(name: str) -> str:
    """The student notebook's file name of assignment `name`."""
    if name not in ASSIGNMENTS:
        raise AssignmentError(f"no assignment {name!r}: the assignments are {', '.join(ASSIGNMENTS)}")
    return ASSIGNMENTS[name]


def source_of(name: str) -> Path:
    """The source notebook of assignment `name`, which must exist."""
    path = NOTEBOOKS / notebook_of(name)
    if not path.exists():
        raise AssignmentError(not_written_yet(name))
    return path


def written() -> list[str]:
    """The assignments whose notebook exists, in course order."""
    return [name for name, notebook in ASSIGNMENTS.items() if (NOTEBOOKS / notebook).exists()]


def not_written_yet(name: str) -> str:
    path = (NOTEBOOKS / notebook_of(name)).relative_to(NOTEBOOKS.parent)
    return f"assignment {name}'s notebook {path} is not written yet"
