"""`feedback`, `export` and `report`: what the TA hands out and reads, from the gradebook.

feedback  nbgrader's GenerateFeedback: feedback/<student>/<assignment>/<notebook>.html
export    nbgrader's CSV export: one row per student and assignment (grades.csv)
report    per-question score distributions of one assignment as a markdown table and a PNG, and every part graded
          0 for a reason other than the answer (crashes, timeouts, tampering, missing cells); every
          student-written string in it is escaped
"""
from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from .course import alembic_on_path
from .inert import markdown_text, one_line
from .release import run_converter
from .verdict import NOT_JUDGED

if TYPE_CHECKING:
    from .course import Course
    from .lms import Exported

Scores = dict[str, dict[str, float]]  # {part or assignment: {student: score}}
# (part, points, graded, mean, median, full marks %, zero %)
Row = tuple[str, float, int, float, float, float, float]


REPOSITORY = str(Path(__file__).resolve().parent.parent)  # where `python -m grader` runs from
FEEDBACK_MB = 2048      # memory of one student's rendering (nbconvert and pygments)
FEEDBACK_SECONDS = 300  # wall clock of one student's rendering


def render_feedback(root: str | Path, assignment: str, student: str) -> None:
    """nbgrader's GenerateFeedback for one student, in this process (the subprocess of `feedback`)."""
    from nbgrader.converters import GenerateFeedback

    from .course import nbgrader_config

    alembic_on_path()
    config = nbgrader_config(root)
    config.CourseDirectory.assignment_id = assignment
    config.CourseDirectory.student_id = student
    config.GenerateFeedback.force = True
    run_converter(GenerateFeedback, config)


def bounded(memory_mb: int) -> Callable[[], None]:
    def limit() -> None:  # in the child, before exec
        resource.setrlimit(resource.RLIMIT_AS, (memory_mb << 20, memory_mb << 20))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    return limit


def feedback(course: Course, students: Sequence[str] | None = None, memory_mb: int = FEEDBACK_MB,
             seconds: float = FEEDBACK_SECONDS, workers: int = 2) -> tuple[list[Path], list[tuple[str, str]]]:
    """HTML feedback on the course's assignment for `students` (default: everyone autograded on it):
    ([files written], [(student, why not)]), in the students' order. Each student's notebook is rendered in a
    process of its own, bounded in memory and time, so a notebook that nbconvert cannot render, or that would take
    the machine's memory, costs that student's feedback only; `workers` of them side by side (each mostly starts
    Python and imports nbgrader: one CPU each)."""
    chosen = students or sorted(p.parent.name for p in course.path("autograded").glob(f"*/{course.assignment}"))
    with ThreadPoolExecutor(max(1, workers)) as pool:
        why_not = list(pool.map(lambda student: render_bounded(course, student, memory_mb, seconds), chosen))
    written = [course.path("feedback", s, course.assignment, course.notebook.replace(".ipynb", ".html"))
               for s, why in zip(chosen, why_not, strict=True) if why is None]
    return written, [(s, why) for s, why in zip(chosen, why_not, strict=True) if why is not None]


def render_bounded(course: Course, student: str, memory_mb: int, seconds: float) -> str | None:
    """Render one student's feedback in a bounded process: None, or why it was not written."""
    command = [sys.executable, "-m", "grader.report", str(course.root), course.assignment, student]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=seconds, cwd=course.root,
                              preexec_fn=bounded(memory_mb), env=os.environ | {"PYTHONPATH": REPOSITORY})
    except subprocess.TimeoutExpired:
        return f"rendering took longer than {seconds} s: stopped (a huge notebook?)"
    if done.returncode != 0:  # nbgrader reports running out of memory as its own error: say the bounds
        said = (done.stderr.strip().splitlines() or [""])[-1] or f"exit status {done.returncode}"
        return f"rendering failed within its {memory_mb:,} MB and {seconds} s ({one_line(said, 200)})"
    return None


def export(course: Course, out: Path, names: Sequence[str] | None = None) -> Path:
    """nbgrader's grades CSV at `out`: a row per student and assignment, of assignments `names` (default: all)."""
    from nbgrader.api import Gradebook
    from nbgrader.plugins import CsvExportPlugin

    alembic_on_path()
    with Gradebook(course.db_url, course.course_id) as gb:
        CsvExportPlugin(to=str(out), assignment=list(names or [])).export(gb)
    return out


def submitted_totals(course: Course, names: Sequence[str] | None = None) -> tuple[Scores, dict[str, float]]:
    """({assignment: {student: total score}} of the students with a submission, {assignment: max score}), of
    assignments `names` (default: every one in the gradebook)."""
    from nbgrader.api import Gradebook

    alembic_on_path()
    totals, points = {}, {}
    with Gradebook(course.db_url, course.course_id) as gb:
        for assignment in gb.assignments:
            if names and assignment.name not in names:
                continue
            points[assignment.name] = assignment.max_score
            totals[assignment.name] = {s.student.id: s.score for s in assignment.submissions}
    return totals, points


def export_for_lms(course: Course, out: Path, lms: str, roster: Path, names: Sequence[str] | None = None,
                   missing: str = "empty") -> Exported:
    """The LMS's import CSV at `out` (grader/lms.py), from its roster export: an lms.Exported."""
    from . import lms as formats

    totals, points = submitted_totals(course, names)
    if lms == "canvas":
        return formats.canvas_csv(roster, out, totals, points, missing)
    (name,) = totals  # one assignment: the CLI asks for --assignment
    return formats.moodle_worksheet(roster, out, totals[name], points[name], missing)


def scores(course: Course) -> tuple[Scores, dict[str, float]]:
    """{grade_id: {student: score}} and {grade_id: max points} of the course's assignment, from the gradebook."""
    from nbgrader.api import Gradebook

    alembic_on_path()
    table: Scores
    table, points = {}, {}
    with Gradebook(course.db_url, course.course_id) as gb:
        notebook_id = course.notebook.replace(".ipynb", "")
        notebook = gb.find_notebook(notebook_id, course.assignment)
        for cell in notebook.grade_cells:
            points[cell.name] = cell.max_score
            table[cell.name] = {}
        for submission in gb.notebook_submissions(notebook_id, course.assignment):
            for grade in submission.grades:
                table[grade.cell.name][submission.student.id] = grade.score
    return table, points


def distribution_rows(table: Mapping[str, Mapping[str, float]], points: Mapping[str, float]) -> list[Row]:
    rows = []
    for part, by_student in table.items():
        values = list(by_student.values())
        if not values:
            continue
        full = sum(v >= points[part] for v in values)
        rows.append((part, points[part], len(values), statistics.mean(values), statistics.median(values),
                     100 * full / len(values), 100 * sum(v == 0 for v in values) / len(values)))
    return rows


def problems(course: Course) -> list[tuple[str, str, str]]:
    """(student, what, why): repairs, and parts lost to something other than the answer (crashes,
    timeouts, tampering, missing cells), one line per cause. A log that cannot be read is one line too."""
    found = []
    for log in sorted(course.path("grading", course.assignment).glob("*.json")):
        try:
            data = json.loads(log.read_text())
            if data["notes"]:
                found.append((data["student"], "notes", "; ".join(data["notes"])))
            causes: dict[str, list[str]] = {}  # cause -> the grade ids it cost
            for gid, part in data["parts"].items():
                if part["score"] == 0 and part["cause"] in NOT_JUDGED:
                    where = f" in {part['cell']}" if part.get("cell") else ""
                    causes.setdefault(f"{part['cause']}{where}: {part['detail']}", []).append(gid)
            found += [(data["student"], ", ".join(gids) if len(gids) < len(data["parts"]) else "every part", cause)
                      for cause, gids in causes.items()]
        except (OSError, ValueError, KeyError, TypeError) as e:
            found.append((log.stem, "grading log", f"cannot be read ({type(e).__name__}); grade this student again"))
    return found


def report(course: Course, out_dir: Path) -> str:
    """report.md and report.png of the course's assignment in `out_dir`; returns the markdown."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    table, points = scores(course)
    rows = distribution_rows(table, points)
    totals: dict[str, float] = {}
    for by_student in table.values():
        for student, v in by_student.items():
            totals[student] = totals.get(student, 0) + v
    lines = [f"# {course.assignment} grading report ({len(totals)} submissions, {sum(points.values()):g} points)", "",
             "| part | points | graded | mean | median | full marks % | zero % |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {p} | {pts:g} | {n} | {mean:.2f} | {med:.2f} | {full:.0f} | {zero:.0f} |"
              for p, pts, n, mean, med, full, zero in rows]
    if totals:
        t = sorted(totals.values())
        lines += ["", f"Total: mean {statistics.mean(t):.2f}, median {statistics.median(t):.2f}, "
                      f"min {t[0]:g}, max {t[-1]:g} of {sum(points.values()):g}."]
    found = problems(course)
    lines += ["", "## Repairs, and parts lost to crashes, timeouts, tampering or missing cells", ""]
    lines += [f"- {s} / {p}: {markdown_text(m, 600)}" for s, p, m in found] or ["None."]
    text = "\n".join(lines) + "\n"
    (out_dir / "report.md").write_text(text)

    fig, (left, right) = plt.subplots(1, 2, figsize=(14, 5), gridspec_kw={"width_ratios": [3, 1]})
    names = [r[0] for r in rows]
    full, zero = [r[5] for r in rows], [r[6] for r in rows]
    partial = [100 - f - z for f, z in zip(full, zero, strict=True)]
    left.bar(names, full, color="tab:green", label="full marks")
    left.bar(names, partial, bottom=full, color="tab:orange", label="partial")
    left.bar(names, zero, bottom=[f + p for f, p in zip(full, partial, strict=True)], color="tab:red", label="zero")
    left.set_ylabel("% of submissions")
    left.set_ylim(0, 100)
    left.tick_params(axis="x", rotation=90)
    left.legend(loc="lower left")
    left.set_title("Scores per part")
    right.hist(list(totals.values()), bins=min(20, max(len(totals), 1)), range=(0, sum(points.values()) or 1),
               color="tab:green")
    right.set_xlabel("total score")
    right.set_ylabel("students")
    right.set_title("Totals")
    fig.tight_layout()
    fig.savefig(out_dir / "report.png", dpi=90)
    plt.close(fig)
    return text


if __name__ == "__main__":  # one student's feedback: python -m grader.report COURSE ASSIGNMENT STUDENT
    render_feedback(*sys.argv[1:4])
