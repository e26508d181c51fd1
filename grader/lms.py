"""`export --format canvas | moodle`: the gradebook as the CSV a course's LMS imports, from the roster it exports.

canvas  Canvas's gradebook import CSV. The roster is Canvas's own gradebook export (Grades > Export): its
        columns Student, ID, SIS User ID, SIS Login ID and Section are kept, its "Points Possible" row gives
        the row's shape, and a student is matched by ID, SIS User ID or SIS Login ID (Canvas's download names
        each file by its user ID). One column per assignment, named as the roster names it ("hw14 (1234)")
        when Canvas has it already, else by the assignment's name (Canvas then creates it), with its points
        possible in the "Points Possible" row.
moodle  Moodle's offline grading worksheet (Assignment > View all submissions > Download grading worksheet),
        filled in: its Identifier ("Participant 12345") is what Moodle's download names each submission's folder
        by, so it is the one roster that the collected ids match. A worksheet is one assignment's: --assignment
        names it; the score is scaled to the worksheet's Maximum Grade. Upload it back with "Upload grading
        worksheet".

Students on the roster without a submission get an empty cell or 0 (`missing`); graded students the roster
lacks are returned, to be listed, never dropped silently.
"""
import csv
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

CANVAS_KEEP = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
CANVAS_MATCH = ("ID", "SIS User ID", "SIS Login ID")
MOODLE_NEEDS = ("Identifier", "Grade", "Maximum Grade")


class RosterError(Exception):
    """The roster cannot be read as the LMS's export; the message says what to do."""


@dataclass(frozen=True)
class Exported:
    path: Path               # the CSV written
    rows: int                # students on the roster
    graded: int              # of them with a grade in the gradebook
    not_on_roster: tuple[str, ...]  # graded students the roster lacks


def read_roster(path: Path, needs: Sequence[str], lms: str, how: str) -> tuple[Sequence[str], list[dict[str, str]]]:
    """(header, rows as dicts) of the roster CSV at `path`; one line of RosterError when it is not that LMS's."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # both LMSs may write a byte-order mark
    except (OSError, UnicodeDecodeError) as e:
        raise RosterError(f"the roster {path} cannot be read ({e}): pass {lms}'s CSV export") from None
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    missing = [c for c in needs if c not in header]
    if missing:
        raise RosterError(f"the roster {path} is not {lms}'s export (no column {', '.join(missing)}): {how}")
    try:
        rows = list(reader)
    except csv.Error as e:
        raise RosterError(f"the roster {path} is not valid CSV ({e}): download it again") from None
    for line, row in enumerate(rows, start=2):  # a short row's missing cells are None, an extra cell's key is
        if None in row or None in row.values():
            raise RosterError(f"the roster {path} has {'fewer' if None in row.values() else 'more'} cells on line "
                              f"{line} than its header: download it again, or mend that line")
    return header, rows


def score_text(value: float | None) -> str:
    return f"{value:g}" if value is not None else ""


def canvas_csv(roster: Path, out: Path, scores: Mapping[str, Mapping[str, float]], points: Mapping[str, float],
               missing: str = "empty") -> Exported:
    """scores: {assignment: {student: total}}; points: {assignment: points possible}."""
    header, rows = read_roster(roster, CANVAS_KEEP, "Canvas", "export the course's gradebook in Canvas (Grades > "
                                                              "Export > Export Entire Gradebook) and pass that file")
    named = {a: next((h for h in header if re.fullmatch(rf"{re.escape(a)} \(\d+\)", h)), a) for a in scores}
    students = [r for r in rows if r["Student"].strip() != "Points Possible"]
    found = set()
    lines = [list(CANVAS_KEEP) + [named[a] for a in scores],
             ["Points Possible", "", "", "", ""] + [f"{points[a]:g}" for a in scores]]
    for row in students:
        ids = [row[c].strip() for c in CANVAS_MATCH if row[c].strip()]
        cells = []
        for by_student in scores.values():
            student = next((i for i in ids if i in by_student), None)
            found |= {student} if student else set()
            # a student of None (no id of the row is graded) finds nothing: the default
            cells.append(score_text(by_student.get(student, 0.0 if missing == "zero" else None)))  # type: ignore[arg-type]
        lines.append([row[c] for c in CANVAS_KEEP] + cells)
    write(out, lines)
    graded = {s for by_student in scores.values() for s in by_student}
    return Exported(out, len(students), len(found), tuple(sorted(graded - found)))


def moodle_worksheet(roster: Path, out: Path, scores: Mapping[str, float], points: float,
                     missing: str = "empty") -> Exported:
    """scores: {student: total} of one assignment worth `points`."""
    header, rows = read_roster(roster, MOODLE_NEEDS, "Moodle", "download the assignment's grading worksheet in "
                                                               "Moodle (View all submissions > Download grading "
                                                               "worksheet) and pass that file")
    found = set()
    for row in rows:
        student = re.sub(r"^\D*", "", row["Identifier"]).strip()  # "Participant 12345" -> "12345"
        try:
            maximum = float(row["Maximum Grade"])
        except ValueError:
            raise RosterError(f"the worksheet's Maximum Grade of {row['Identifier']} is not a number "
                              f"({row['Maximum Grade']!r}): download the worksheet again") from None
        if student in scores:
            found.add(student)
            row["Grade"] = f"{round(scores[student] / points * maximum, 2):g}"
        else:
            row["Grade"] = "0" if missing == "zero" else ""
    write(out, [header] + [[row[h] for h in header] for row in rows])
    return Exported(out, len(rows), len(found), tuple(sorted(set(scores) - found)))


def write(out: Path, lines: Iterable[Sequence[str]]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(lines)
