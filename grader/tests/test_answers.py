"""Quiz answers from the source, and when the run says the assignment happened."""
from grader.answers import quiz_answers
from grader.autograde import RunResult, answer_verdict
from grader.parts import Part

Q01 = Part("q01", 1.0, "answer", "q01", frozenset({"a", "d"}))


def notebook(*sources):
    return {"cells": [{"cell_type": "code", "metadata": {}, "source": s} for s in sources]}


def test_literal_sets_strings_lists_and_the_last_assignment():
    nb = notebook("q01 = {'a'}\nq02 = 'b'", "q01 = ['d', 'a', 'a']\nq03: set = ('c',)", "x = 1")
    found = quiz_answers(nb, {"q01", "q02", "q03", "q04"})
    assert (found["q01"].cell, found["q01"].letters) == (1, ["a", "d"])
    assert found["q02"].letters == ["b"] and found["q03"].letters == ["c"] and "q04" not in found


def test_values_that_are_not_letters_written_out():
    nb = notebook("q01 = 2", "q02 = {'a'} if network() else {'b'}", "q03 = {'a'}\nq03 |= {'d'}", "q04 = {'a'",
                  "q05 = {1}")
    found = quiz_answers(nb, {"q01", "q02", "q03", "q04", "q05"})
    assert found["q01"].problem == "an int, not a set of letters"
    assert found["q02"].problem.startswith("an expression") and found["q03"].problem.startswith("changed in place")
    assert "q04" not in found  # a syntax error assigns nothing
    assert found["q05"].problem == "a set, not a set of letters"


def result(done=(), stopped=None, errors=None):
    records = {i: {"outputs": []} for i in done}
    for i, line in (errors or {}).items():
        records[i] = {"outputs": [{"output_type": "error", "ename": "NotImplementedError", "evalue": "", "line": line}]}
    return RunResult(records, stopped or {}, None, 0.0)


def test_an_answer_counts_when_its_assignment_ran():
    nb = notebook("q01 = {'a', 'd'}\nraise NotImplementedError()")
    answer = quiz_answers(nb, {"q01"})["q01"]
    assert answer_verdict(Q01, answer, nb, result(errors={0: 2})).cause == "right"  # raised below it
    assert answer_verdict(Q01, answer, nb, result(errors={0: 1})).cause == "crashed"  # raised before it ended
    stopped = result(stopped={0: {"cause": "timed out", "detail": "the cell used more than 30 s"}})
    verdict = answer_verdict(Q01, answer, nb, stopped)
    assert (verdict.cause, verdict.score, verdict.cell) == ("timed out", 0.0, "cell 0")
    assert answer_verdict(Q01, None, nb, result(done=[0])).cause == "not answered"


def test_a_wrong_answer_keeps_what_was_answered():
    nb = notebook("q01 = {'b'}")
    verdict = answer_verdict(Q01, quiz_answers(nb, {"q01"})["q01"], nb, result(done=[0]))
    assert (verdict.cause, verdict.answer, verdict.message) == ("wrong", ["b"], "q01: not right (answered b)")


def test_a_huge_cell_is_not_parsed_and_costs_only_its_own_answers():
    import tracemalloc

    from grader.answers import QUIZ_CELL_CHARS
    bomb = "x = 1\n" + "a\n" * 5_000_000  # 10 MB of statements: parsing it would take about 9 GB
    named = "q02 = {'b'}\n" + "a\n" * QUIZ_CELL_CHARS
    nb = notebook("q01 = {'a', 'd'}", bomb, named)
    tracemalloc.start()
    found = quiz_answers(nb, {"q01", "q02"})
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 50 << 20, f"reading the answers took {peak >> 20} MB"
    assert found["q01"].letters == ["a", "d"]
    assert (found["q02"].cell, found["q02"].line, found["q02"].letters) == (2, 1, None)
    assert "characters" in found["q02"].problem and "own cells" in found["q02"].problem
    assert "q03" not in quiz_answers(notebook("q03 == {'a'}\n" + "a\n" * QUIZ_CELL_CHARS), {"q03"})


def test_cells_after_every_needed_cell_are_not_run():
    from grader.autograde import job_cells
    check = Part("check_fisher_diagonal", 3.0, "function", "fisher_diagonal")

    def cell(source, grade_id=None, tags=()):
        meta = {"nbgrader": {"grade": True, "grade_id": grade_id}} if grade_id else {}
        return {"cell_type": "code", "metadata": meta | ({"tags": list(tags)} if tags else {}), "source": source}
    nb = {"cells": [cell("import torch"), cell("def fisher_diagonal(model, batches):\n    pass"),
                    cell("check('fisher_diagonal')", "check_fisher_diagonal"),
                    cell("train()", tags=["skip-when-grading"]), cell("q01 = {'a'}"),
                    cell("import time\ntime.sleep(110)"), cell("print('more of my own')")]}
    cells, left_out = job_cells(nb, {"check_fisher_diagonal": check, "q01": Q01}, quiz_answers(nb, {"q01"}))
    assert [c["index"] for c in cells] == [0, 1, 2, 4]
    assert left_out[3].endswith("no verdict needs this cell")
    assert left_out[5] == left_out[6] == "not run by the autograder: it comes after every cell a verdict needs"
