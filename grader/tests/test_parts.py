import json

import pytest

from cl_course.teaching.blanks import lesson_blanks
from grader.parts import PartsError, part_of, parts_of
from grader.release import ROOT


@pytest.mark.parametrize("lesson, notebook, questions, first_key", [
    ("hw14", "hw14_lifelong_learning.ipynb", 25, {"a", "d"}),
    ("lesson2", "lesson2_scenarios_and_replay.ipynb", 18, {"a"})])
def test_each_course_notebook_grades_each_blank_of_its_lesson_and_its_answers(lesson, notebook, questions, first_key):
    parts = parts_of(json.loads((ROOT / "notebooks" / notebook).read_text()))
    functions = {p.name: p.points for p in parts if p.kind == "function"}
    # the table's points are the notebook's
    assert functions == {name: blank.points for name, blank in lesson_blanks(lesson).items()}
    answers = [p for p in parts if p.kind == "answer"]
    assert [p.name for p in answers] == [f"q{i:02d}" for i in range(1, questions + 1)]
    assert answers[0].key == frozenset(first_key)
    assert all(p.points == 1 for p in answers)


def cell(source, grade_id="t1"):
    return {"cell_type": "code", "source": source,
            "metadata": {"nbgrader": {"grade": True, "grade_id": grade_id, "points": 2}}}


def test_an_answer_key_is_read_from_the_hidden_assert():
    part = part_of(cell('selfcheck.check_answer(globals(), "q09", "abcd")\nassert set(q09) == {"b", "c"}, "no"'))
    assert (part.kind, part.name, part.key, part.points) == ("answer", "q09", frozenset("bc"), 2.0)


@pytest.mark.parametrize("source, message", [
    ("print('hello')", "calls neither selfcheck.check nor"),
    ('selfcheck.check_answer(globals(), "q01", "ab")', "no hidden `assert set\\(q01\\)"),
    ("def broken(:", "not valid Python"),
])
def test_a_test_cell_the_grader_cannot_judge_is_named(source, message):
    with pytest.raises(PartsError, match=message):
        part_of(cell(source))
