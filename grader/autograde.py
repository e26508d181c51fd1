"""`python -m grader autograde`: repair, run in the sandbox, judge, record.

For each submission: repair it against the released notebook (repair.py); run its cells in the
sandbox, where each function test cell is replaced by a probe that records the student's outputs
(harness.py), possibly on another machine (cluster.py); judge the probes here against the reference
(judge.py) and the quiz answers from the source (answers.py); write the autograded notebook (its
student content made inert), the gradebook's scores and grading/<assignment>/<student>.json. A cell that
crashes the process, runs too long or tampers with the harness is left out and the run starts
again, so only that cell is lost. Cells no verdict needs (training, figures) are not run.
"""
import json
import time
import traceback
import warnings
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tqdm.auto import tqdm

from cl_course.teaching.blanks import BLANKS
from cl_course.teaching.selfcheck import FIXTURE_SEED

from .answers import Answer, quiz_answers
from .course import Course, alembic_on_path
from .inert import clean_text, fenced, one_line, safe_outputs
from .judge import hidden_seeds, judge
from .parts import Part
from .repair import RepairError, defined_names, grade_id, repair, source_of
from .sandbox import Sandbox
from .verdict import Verdict

HIDDEN_FIXTURES = 3  # per function part; the score is the fraction that match
MAX_RUNS = 4         # a run stopped by a crash, a timeout or tampering restarts without that cell, this often
SKIP_TAG = "skip-when-grading"  # released cells no verdict needs (training, figures): the grading run leaves them out

Notebook = dict[str, Any]  # nbformat 4 as plain JSON
Job = dict[str, Any]       # one harness cell: {"index", "kind": "function" | "code", "name" or "source", "graded"}
Parts = dict[str, Part]    # grade id -> part


class Pool(Protocol):
    """Where runs go: a ThreadPoolExecutor here, or cluster.DaskPool."""
    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future: ...


@dataclass
class Graded:
    student: str
    verdicts: dict[str, Verdict]   # grade_id -> Verdict
    notes: list[str] = field(default_factory=list)
    notebook: Notebook | None = None
    unanswered: set[str] = field(default_factory=set)  # solution cells left as released
    seconds: float = 0.0

    @property
    def score(self) -> float:
        return sum(v.score for v in self.verdicts.values())

    @property
    def timed_out(self) -> bool:
        return any(v.cause == "timed out" for v in self.verdicts.values())


@dataclass
class Prepared:
    """A repaired submission and the harness cells to run for it."""
    student: str
    notebook: Notebook
    notes: list[str]
    cells: list[Job]
    left_out: dict[int, str]     # cell index -> why the grading run leaves it out
    answers: dict[str, Answer]   # quiz name -> its answer, read once from the source


def label(notebook: Notebook, index: int) -> str:
    return grade_id(notebook["cells"][index]) or f"cell {index}"


def job_cells(notebook: Notebook, parts: Parts, answers: dict[str, Answer]) -> tuple[list[Job], dict[int, str]]:
    """The harness's cells (code cells as they are, function test cells as probes; quiz test cells
    need no run: answers are read from the source) and the cells left out: those tagged as needed by
    no verdict, and every cell after the last one a verdict needs (a probe, a cell that defines a graded
    function or assigns a quiz answer), which could only cost time."""
    graded_names = {p.name for p in parts.values()}
    cells: list[Job] = []
    left_out: dict[int, str] = {}
    for i, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] != "code":
            continue
        part = parts.get(grade_id(cell)) if cell["metadata"].get("nbgrader", {}).get("grade") else None
        if part and part.kind == "function":
            cells.append({"index": i, "kind": "function", "name": part.name})
        elif part is None and SKIP_TAG in cell["metadata"].get("tags", []):
            left_out[i] = "not run by the autograder: no verdict needs this cell"
        elif part is None:
            cells.append({"index": i, "kind": "code", "source": source_of(cell),
                          "graded": bool(defined_names(cell) & graded_names)})
    needed = [c["index"] for c in cells if c["kind"] == "function" or c["graded"]] + [a.cell for a in answers.values()]
    last = max(needed, default=-1)
    for c in [c for c in cells if c["index"] > last]:
        left_out[c["index"]] = "not run by the autograder: it comes after every cell a verdict needs"
    return [c for c in cells if c["index"] <= last], left_out


@dataclass(frozen=True)
class RunResult:
    """What the runs of one submission left: plain data inside, so it crosses to and from Dask's workers as is."""
    done: dict[int, dict[str, Any]]      # cell index -> the harness's record of it
    stopped: dict[int, dict[str, str]]   # cell index -> {"cause", "detail"}: cells left out after they stopped a run
    unfinished: dict[str, Any] | None    # why the cells in neither ran (the last run's stop), or None
    seconds: float          # wall clock of all the runs


def run_cells(sandbox: Sandbox, cells: list[Job], seeds: list[int]) -> RunResult:
    """Run one submission's cells in `sandbox`, on this machine. A cell that stops the run is left
    out and the run starts again; a cell that defines nothing graded and ran out of time first gets
    a run with longer limits (a slow setup cell must not cost the functions defined after it). All
    the runs together stay within the sandbox's submission_seconds. A RunResult."""
    started = time.monotonic()
    stopped: dict[int, dict[str, str]] = {}
    lifted: set[int] = set()
    outcome = None
    stop: dict[str, Any] | None = None
    budget = sandbox.limits.submission_seconds
    for attempt in range(MAX_RUNS):
        left = budget - (time.monotonic() - started)
        if left <= 0:
            stop = {"cell": None, "cause": "timed out", "limit": "submission",
                    "detail": f"the submission used up its {budget:g} s of grading time"}
            break
        outcome = sandbox.run({"cells": [c for c in cells if c["index"] not in stopped], "seeds": seeds,
                               "lifted": sorted(lifted), "run_seconds": left})
        stop = outcome.stop
        if stop is None or stop["cell"] is None or attempt == MAX_RUNS - 1:
            break
        cell = next(c for c in cells if c["index"] == stop["cell"])
        if stop.get("limit") == "cell" and not cell.get("graded", True) and cell["index"] not in lifted:
            lifted.add(cell["index"])
        else:
            stopped[cell["index"]] = {"cause": stop["cause"], "detail": stop["detail"]}
    return RunResult(outcome.done if outcome else {}, stopped, stop, time.monotonic() - started)


@dataclass(frozen=True)
class CellTrouble:
    """Why a cell did not run to its end."""
    cause: str          # a Verdict cause: "crashed", "timed out", "tampered", "grader error"
    detail: str         # in words, one line
    line: int | None    # the line it raised at (0 where unknown); None when it did not run at all


def cell_trouble(index: int, result: RunResult) -> CellTrouble | None:
    """A CellTrouble when cell `index` did not run to its end, else None."""
    if index in result.stopped:
        return CellTrouble(result.stopped[index]["cause"], clean_text(result.stopped[index]["detail"], 300), None)
    if index not in result.done:
        why = result.unfinished or {"cause": "grader error", "detail": "the run ended early"}
        return CellTrouble(why["cause"], clean_text(f"not run: {why['detail']}", 300), None)
    raw = result.done[index].get("outputs")
    raw = raw if isinstance(raw, list) else []
    errors = [o for o in raw if isinstance(o, dict) and o.get("output_type") == "error"]
    if errors:
        error = safe_outputs(errors[:1])[0]
        line = errors[0].get("line")
        return CellTrouble("crashed", f"raised {error['ename']}: {one_line(error['evalue'], 200)}",
                           line if type(line) is int else 0)
    return None


def defining_cell(notebook: Notebook, name: str) -> int | None:
    """The last code cell that defines `name`, or None."""
    found = [i for i, c in enumerate(notebook["cells"]) if c["cell_type"] == "code" and name in defined_names(c)]
    return found[-1] if found else None


def function_verdict(part: Part, index: int, notebook: Notebook, result: RunResult, seeds: list[int]) -> Verdict:
    if index not in result.done:
        trouble = cell_trouble(index, result)
        assert trouble is not None  # a cell without a record always has one
        return Verdict(part.name, 0.0, trouble.cause, trouble.detail)
    verdict = judge(part, result.done[index].get("probe"), seeds)
    defining = defining_cell(notebook, part.name) if verdict.cause == "missing" else None
    if defining is not None:  # not defined: say why, from the cell that defines it
        trouble = cell_trouble(defining, result)
        if trouble:
            return Verdict(part.name, 0.0, trouble.cause, trouble.detail, cell=label(notebook, defining))
    return verdict


def answer_verdict(part: Part, answer: Answer | None, notebook: Notebook, result: RunResult) -> Verdict:
    if answer is None:
        return Verdict(part.name, 0.0, "not answered", f"{part.name} is not assigned")
    trouble = cell_trouble(answer.cell, result)
    if trouble and (trouble.line is None or trouble.line <= answer.line):  # the assignment never ran
        return Verdict(part.name, 0.0, trouble.cause, trouble.detail, cell=label(notebook, answer.cell))
    if answer.letters is None:
        return Verdict(part.name, 0.0, "not answered", f"{part.name} is {answer.problem}")
    if set(answer.letters) == part.key:
        return Verdict(part.name, part.points, "right", answer=answer.letters)
    return Verdict(part.name, 0.0, "wrong", answer=answer.letters)


def verdict_outputs(verdict: Verdict) -> list[dict[str, Any]]:
    outputs = [{"output_type": "stream", "name": "stdout", "text": clean_text(verdict.message) + "\n"}]
    if verdict.score > 0:
        return outputs + [{"output_type": "execute_result", "data": {"text/plain": f"{verdict.score:g}"},
                           "metadata": {}, "execution_count": None}]
    return outputs + [{"output_type": "error", "ename": "NotPassed", "evalue": clean_text(verdict.message),
                       "traceback": []}]


SHOWN_CELL_CHARS = 50_000  # of a code cell's source in the graded notebook: its feedback renders in bounded time


def shortened(source: str) -> str:
    if len(source) <= SHOWN_CELL_CHARS:
        return source
    return (source[:SHOWN_CELL_CHARS] + f"\n# ... {len(source) - SHOWN_CELL_CHARS:,} more characters, not shown here "
            "(graded as submitted)\n")


def graded_notebook(notebook: Notebook, release: Notebook, result: RunResult | None, left_out: dict[int, str],
                    verdicts: dict[str, Verdict]) -> Notebook:
    """The repaired notebook with the run's outputs (rebuilt from a whitelist), each test cell showing
    its verdict, and the student's own markdown shown as text: nothing in it runs in a TA's browser."""
    released_text = {source_of(c) for c in release["cells"] if c["cell_type"] != "code"}
    for i, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] != "code":
            if source_of(cell) not in released_text:
                cell.update(cell_type="markdown", source=fenced(source_of(cell)), metadata={})
            continue
        cell["source"] = shortened(source_of(cell))
        gid = grade_id(cell)
        trouble = cell_trouble(i, result) if result else None
        if gid in verdicts:
            cell["outputs"] = verdict_outputs(verdicts[gid])
        elif i in left_out:
            cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": f"({left_out[i]})\n"}]
        elif result and i in result.done:
            cell["outputs"] = safe_outputs(result.done[i].get("outputs"))
        elif trouble:
            cell["outputs"] = [{"output_type": "error", "ename": "NotRun", "evalue": trouble.detail, "traceback": []}]
    return notebook


def prepare(course: Course, student: str, release: Notebook, parts: Parts) -> Prepared:
    repaired = repair(course.submitted(student).read_bytes(), release)
    answers = quiz_answers(repaired.notebook, {p.name for p in parts.values() if p.kind == "answer"})
    cells, left_out = job_cells(repaired.notebook, parts, answers)
    return Prepared(student, repaired.notebook, repaired.notes, cells, left_out, answers)


def judged(prepared: Prepared, result: RunResult, parts: Parts, release: Notebook, seeds: list[int]) -> Graded:
    """The Graded submission from its run's result."""
    notebook = prepared.notebook
    probes = {grade_id(notebook["cells"][c["index"]]): c["index"] for c in prepared.cells if c["kind"] == "function"}
    verdicts: dict[str, Verdict] = {}
    for gid, part in parts.items():
        if part.kind == "answer":
            verdicts[gid] = answer_verdict(part, prepared.answers.get(part.name), notebook, result)
        elif gid in probes:
            verdicts[gid] = function_verdict(part, probes[gid], notebook, result, seeds)
        else:  # a graded cell the repaired notebook lacks
            verdicts[gid] = Verdict(part.name, 0.0, "missing", "its test cell was not found")
    notes = prepared.notes + [f"{label(notebook, i)}: {why['cause']}: {one_line(why['detail'])}"
                              for i, why in result.stopped.items() if i not in probes.values()]
    stubs = {grade_id(c): source_of(c) for c in release["cells"] if c["metadata"].get("nbgrader", {}).get("solution")}
    unanswered = {gid for gid, stub in stubs.items()
                  if any(grade_id(c) == gid and source_of(c).strip() == stub.strip() for c in notebook["cells"])}
    shown = graded_notebook(notebook, release, result, prepared.left_out, verdicts)
    return Graded(prepared.student, verdicts, notes, shown, unanswered, result.seconds)


def not_graded(student: str, parts: Parts, release: Notebook, cause: str, reason: str) -> Graded:
    """Every part 0 for one reason (the file is not a notebook; a grader bug): the batch goes on."""
    verdicts = {gid: Verdict(p.name, 0.0, cause, reason) for gid, p in parts.items()}
    notebook = graded_notebook(json.loads(json.dumps(release)), release, None, {}, verdicts)
    return Graded(student, verdicts, [f"graded 0: {reason}"], notebook)


def grader_failed(student: str, parts: Parts, release: Notebook, error: BaseException) -> Graded:
    """A grader bug on one submission: 0 with the error named, and its traceback in the notes."""
    graded = not_graded(student, parts, release, "grader error",
                        f"internal grader error ({type(error).__name__}: {one_line(error)}); please report it")
    graded.notes.append(traceback.format_exc(limit=-3))
    return graded


def record(course: Course, graded: Graded, parts: Parts, release: Notebook) -> None:
    """Scores into the gradebook (nbgrader's tables), the notebook into autograded/, and the reasons
    into grading/<assignment>/<student>.json."""
    from nbgrader.api import Gradebook
    from nbgrader.utils import parse_utc

    stamp_file = course.submitted(graded.student).with_name("timestamp.txt")
    stamp = stamp_file.read_text().strip() if stamp_file.exists() else None
    assignment, notebook_id = course.assignment, Path(course.notebook).stem
    with Gradebook(course.db_url, course.course_id) as gb, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SQLAlchemy's SAWarning from nbgrader's add_submission, on every call
        gb.update_or_create_student(graded.student)
        gb.update_or_create_submission(assignment, graded.student, **({"timestamp": parse_utc(stamp)} if stamp else {}))
        for gid, verdict in graded.verdicts.items():
            grade = gb.find_grade(gid, notebook_id, assignment, graded.student)
            grade.auto_score = verdict.score
            grade.needs_manual_grade = grade.manual_score is not None
        for cell in release["cells"]:
            if cell["metadata"].get("nbgrader", {}).get("solution"):
                comment = gb.find_comment(grade_id(cell), notebook_id, assignment, graded.student)
                comment.auto_comment = "No response." if grade_id(cell) in graded.unanswered else None
        gb.db.commit()
    target = course.autograded(graded.student)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(graded.notebook or release, indent=1))
    log = course.log(graded.student)
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(json.dumps({
        "student": graded.student, "score": graded.score, "max_score": sum(p.points for p in parts.values()),
        "seconds": round(graded.seconds, 2), "notes": [clean_text(n, 2000) for n in graded.notes],
        "parts": {gid: v.record(parts[gid].points) for gid, v in graded.verdicts.items()}}, indent=1))


def autograde(course: Course, sandbox: Sandbox, students: Iterable[str] | None = None, workers: int = 1,
              progress: bool = True, pool: Pool | None = None) -> list[Graded]:
    """Grade `students` (default: everyone collected), `workers` sandboxes at once, or on `pool` (an
    executor whose submit() returns concurrent futures, e.g. a Dask cluster's). A submission that
    timed out beside others is graded again before a timeout costs it points: its second run is queued
    behind every first run, so it starts once the batch's first pass has left the pool, and the second
    runs go side by side, not one after another. Returns [Graded]."""
    course.require()
    alembic_on_path()
    if pool is None:  # a cluster's workers were checked when it was opened (cluster.open_pool)
        sandbox.check()
    parts = {p.grade_id: p for p in course.parts()}
    release = course.release()
    # a class blank records a few counts and flags, which a published record can share with a hidden fixture's;
    # a function's float results on other random inputs cannot
    classes = [p.name for p in parts.values() if p.kind == "function" and isinstance(BLANKS[p.name].reference, type)]
    seeds = [FIXTURE_SEED] + hidden_seeds(classes, HIDDEN_FIXTURES)  # never stored
    results: list[Graded] = []
    prepared: dict[str, Prepared] = {}

    def finish(student: str, future: Future) -> Graded:
        try:
            return judged(prepared[student], future.result(), parts, release, seeds)
        except Exception as e:  # a grader bug must not stop the batch
            return grader_failed(student, parts, release, e)

    with nullcontext(pool) if pool else ThreadPoolExecutor(max_workers=workers) as runner:
        first: dict[Future, str] = {}
        for student in students or course.students():
            try:
                prepared[student] = prepare(course, student, release, parts)
            except (RepairError, OSError) as e:
                results.append(not_graded(student, parts, release, "missing", f"not graded: {e}"))
            except Exception as e:  # a grader bug on one file must not stop the batch
                results.append(grader_failed(student, parts, release, e))
            if student not in prepared:
                record(course, results[-1], parts, release)
                continue
            first[runner.submit(run_cells, sandbox, prepared[student].cells, seeds)] = student
        again: dict[Future, Graded] = {}  # a second run -> the first run's result
        pending, bar = set(first), tqdm(total=len(first), desc="autograde", disable=not progress)
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                student = first[future] if future in first else again[future].student
                graded = finish(student, future)
                if future in first and graded.timed_out and (pool is not None or workers > 1):
                    retry = runner.submit(run_cells, sandbox, prepared[student].cells, seeds)
                    again[retry] = graded
                    pending.add(retry)
                    bar.total += 1
                else:
                    if future in again:
                        graded.notes.append(f"timed out beside other submissions (score {again[future].score:g}); "
                                            "graded again after the first pass")
                    record(course, graded, parts, release)
                    results.append(graded)
                bar.update()
        bar.close()
    return sorted(results, key=lambda g: g.student)
