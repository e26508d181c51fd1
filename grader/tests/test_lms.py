"""Gradebook exports for an LMS (grader/lms.py), against roster files written in each LMS's documented
export format: Canvas's gradebook export (a "Points Possible" row, assignments named "Name (id)") and
Moodle's offline grading worksheet ("Participant N" identifiers, a Grade and a Maximum Grade column)."""
import csv
import re
from pathlib import Path

import pytest

from grader.lms import RosterError, canvas_csv, moodle_worksheet

ROSTERS = Path(__file__).parent / "rosters"


def rows(path):
    return list(csv.reader(path.open(encoding="utf-8")))


def test_canvas_keeps_the_roster_and_names_assignments_as_canvas_does(tmp_path):
    out = tmp_path / "canvas.csv"
    done = canvas_csv(ROSTERS / "canvas_gradebook_export.csv", out,
                      {"hw14": {"11001": 38.0, "S-002": 30.5, "eve": 12.0}, "lesson2": {"11001": 20.0}},
                      {"hw14": 38.0, "lesson2": 29.0})
    table = rows(out)
    assert table[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "hw14 (52001)", "lesson2"]
    assert table[1] == ["Points Possible", "", "", "", "", "38", "29"]
    by_name = {r[0]: r[5:] for r in table[2:]}
    assert by_name == {"Smith, Alice": ["38", "20"], "Ng, Bob": ["30.5", ""], "Lee, Carol": ["", ""],
                       "Student, Test": ["", ""]}  # matched by ID, then SIS User ID; no submission: empty
    assert (done.rows, done.graded, done.not_on_roster) == (4, 2, ("eve",))
    canvas_csv(ROSTERS / "canvas_gradebook_export.csv", out, {"hw14": {"11001": 38.0}}, {"hw14": 38.0},
               missing="zero")
    assert {r[0]: r[5] for r in rows(out)[2:]}["Lee, Carol"] == "0"


def test_moodle_fills_the_grading_worksheet_on_its_scale(tmp_path):
    out = tmp_path / "moodle.csv"
    done = moodle_worksheet(ROSTERS / "moodle_grading_worksheet.csv", out, {"12345": 38.0, "12346": 19.0,
                                                                            "99999": 1.0}, 38.0)
    table = rows(out)
    assert table[0][:6] == ["Identifier", "Full name", "Email address", "Status", "Grade", "Maximum Grade"]
    assert {r[0]: r[4] for r in table[1:]} == {"Participant 12345": "100", "Participant 12346": "50",
                                               "Participant 12347": ""}
    assert table[1][7] == "Friday, 20 November 2026, 9:30 AM"  # every other column as Moodle wrote it
    assert (done.rows, done.graded, done.not_on_roster) == (3, 2, ("99999",))


@pytest.mark.parametrize("content, message", [
    ("name,score\na,1\n", "is not Canvas's export (no column Student, ID, SIS User ID, SIS Login ID, Section)"),
    (b"\xff\xfe\x00junk", "cannot be read"),
    ("Student,ID,SIS User ID,SIS Login ID,Section\nAda,1,s1\n", "has fewer cells on line 2 than its header"),
    ("Student,ID,SIS User ID,SIS Login ID,Section\nAda,1,s1,l1,A,extra\n", "has more cells on line 2"),
])
def test_a_roster_that_is_not_the_lms_export_is_one_line(tmp_path, content, message):
    roster = tmp_path / "roster.csv"
    roster.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(RosterError, match=re.escape(message)):
        canvas_csv(roster, tmp_path / "out.csv", {"hw14": {}}, {"hw14": 38.0})
    with pytest.raises(RosterError, match="Moodle"):
        moodle_worksheet(ROSTERS / "canvas_gradebook_export.csv", tmp_path / "out.csv", {}, 38.0)
