"""`python -m grader autograde`: repair, run in the sandbox, judge, record.

For each submission: repair it against the released notebook (repair.py); run its cells in the
sandbox, where each graded test cell is replaced by a probe that records the student's outputs
(harness.py); judge the probes here against the reference (judge.py); write the autograded
notebook, the gradebook's scores and grading/<student>.json. A cell that crashes the process or
runs too long is skipped and the run starts again, so only that part is lost.
"""
import json
import queue
import secrets
import shutil
import tempfile
import time
import traceback
import warnings
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from cl_course.selfcheck import FIXTURE_SEED

from .course import ASSIGNMENT, NOTEBOOK, alembic_on_path
from .judge import Verdict, judge
from .repair import RepairError, defined_names, grade_id, repair, source_of
from .sandbox import HARNESS

HIDDEN_FIXTURES = 3  # per function part; the score is the fraction that match
MAX_RUNS = 4         # a run stopped by a crash or a timeout restarts without that cell, this often


@dataclass
class Graded:
    student: str
    verdicts: dict                 # grade_id -> Verdict
    notes: list = field(default_factory=list)
    notebook: dict = None
    unanswered: set = field(default_factory=set)  # solution cells left as released
    seconds: float = 0.0

    @property
    def score(self):
        return sum(v.score for v in self.verdicts.values())


def job_cells(notebook, parts):
    """The harness's cells: code cells as they are, graded test cells as probes."""
    cells = []
    for i, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] != "code":
            continue
        part = parts.get(grade_id(cell)) if cell["metadata"].get("nbgrader", {}).get("grade") else None
        if part:
            cells.append({"index": i, "kind": part.kind, "name": part.name})
        else:
            cells.append({"index": i, "kind": "code", "source": source_of(cell)})
    return cells


def run_cells(sandbox, cells, seeds, slot):
    """{cell index: harness entry} of the last run, and {cell index: why it has no result}."""
    skipped, reason = {}, None
    with tempfile.TemporaryDirectory(prefix="cl-grade-") as tmp:
        job = Path(tmp, "job")
        job.mkdir()
        shutil.copy(HARNESS, job / "harness.py")
        for attempt in range(MAX_RUNS):
            (job / "job.json").write_text(json.dumps({"cells": cells, "seeds": seeds, "skip": skipped,
                                                      "max_output": sandbox.limits.output_chars}))
            scratch = Path(tmp, f"scratch{attempt}")
            scratch.mkdir()
            outcome = sandbox.run(job, scratch, slot)
            done = {e["done"]: e for e in outcome.entries if isinstance(e.get("done"), int)}
            if outcome.reason is None:
                break
            if outcome.stopped_in is None or attempt == MAX_RUNS - 1:
                reason = outcome.reason
                break
            skipped[str(outcome.stopped_in)] = outcome.reason
    missing = {c["index"]: skipped.get(str(c["index"])) or f"not run: {reason}" for c in cells
               if c["index"] not in done}
    return done, missing


def cell_trouble(notebook, name, done, missing):
    """Why the cell defining `name` did not run to its end, or None."""
    for i, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] == "code" and name in defined_names(cell):
            if i in missing:
                return missing[i]
            errors = [o for o in done.get(i, {}).get("outputs", []) if isinstance(o, dict) and o.get("output_type") == "error"]
            if errors:
                return f"raised {errors[0].get('ename')}: {str(errors[0].get('evalue'))[:200]}"
    return None


def verdict_outputs(verdict):
    outputs = [{"output_type": "stream", "name": "stdout", "text": verdict.message + "\n"}]
    if verdict.score > 0:
        return outputs + [{"output_type": "execute_result", "data": {"text/plain": f"{verdict.score:g}"},
                           "metadata": {}, "execution_count": None}]
    return outputs + [{"output_type": "error", "ename": "NotPassed", "evalue": verdict.message, "traceback": []}]


def graded_notebook(notebook, tests, done, missing, verdicts):
    """The repaired notebook with the run's outputs, and each test cell showing its verdict."""
    for i, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] != "code":
            continue
        gid = grade_id(cell)
        if gid in verdicts:
            cell["source"] = tests.get(gid, cell["source"])
            cell["outputs"] = verdict_outputs(verdicts[gid])
        elif i in done:
            cell["outputs"] = done[i].get("outputs") if isinstance(done[i].get("outputs"), list) else []
        elif i in missing:
            cell["outputs"] = [{"output_type": "error", "ename": "NotRun", "evalue": missing[i], "traceback": []}]
    return notebook


def grade_submission(course, student, parts, release, tests, seeds, sandbox, slot):
    started = time.monotonic()
    try:
        repaired = repair(course.submitted(student).read_bytes(), release)
    except (RepairError, OSError) as e:
        reason = str(e)
        verdicts = {gid: Verdict(0.0, f"not graded: {reason}") for gid in parts}
        notebook = json.loads(json.dumps(release))
        return Graded(student, verdicts, [f"graded 0: {reason}"],
                      graded_notebook(notebook, tests, {}, {}, verdicts), set(), time.monotonic() - started)
    notebook = repaired.notebook
    cells = job_cells(notebook, parts)
    done, missing = run_cells(sandbox, cells, seeds, slot)
    verdicts = {}
    for c in cells:
        if c["kind"] == "code":
            continue
        gid = grade_id(notebook["cells"][c["index"]])
        if c["index"] in done:
            verdicts[gid] = judge(parts[gid], done[c["index"]].get("probe"), seeds)
        else:
            verdicts[gid] = Verdict(0.0, f"{parts[gid].name}: {missing[c['index']]}")
    for gid, verdict in verdicts.items():
        if verdict.score == 0 and ("not defined" in verdict.message or "not answered" in verdict.message):
            why = cell_trouble(notebook, parts[gid].name, done, missing)
            verdict.message += f" (its cell: {why})" if why else ""
    for gid in parts.keys() - verdicts.keys():  # a graded cell the repaired notebook lacks
        verdicts[gid] = Verdict(0.0, f"{parts[gid].name}: its test cell was not found")
    notes = repaired.notes + [f"{grade_id(notebook['cells'][i]) or f'cell {i}'}: {why}" for i, why in missing.items()
                              if not why.startswith("not run")]
    stubs = {grade_id(c): source_of(c) for c in release["cells"] if c["metadata"].get("nbgrader", {}).get("solution")}
    unanswered = {gid for gid, stub in stubs.items()
                  if any(grade_id(c) == gid and source_of(c).strip() == stub.strip() for c in notebook["cells"])}
    return Graded(student, verdicts, notes, graded_notebook(notebook, tests, done, missing, verdicts),
                  unanswered, time.monotonic() - started)


def failed(student, parts, error):
    """A grader bug must not stop the batch: this submission gets 0 with the error named."""
    reason = f"internal grader error ({type(error).__name__}: {error}); please report it"
    return Graded(student, {gid: Verdict(0.0, f"not graded: {reason}") for gid in parts}, [reason])


def record(course, graded, parts, release):
    """Scores into the gradebook (nbgrader's tables), the notebook into autograded/, and the reasons
    into grading/<student>.json."""
    from nbgrader.api import Gradebook
    from nbgrader.utils import parse_utc

    stamp_file = course.submitted(graded.student).with_name("timestamp.txt")
    stamp = stamp_file.read_text().strip() if stamp_file.exists() else None
    notebook_id = Path(NOTEBOOK).stem
    with Gradebook(course.db_url, course.course_id) as gb, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SQLAlchemy's SAWarning from nbgrader's add_submission, on every call
        gb.update_or_create_student(graded.student)
        gb.update_or_create_submission(ASSIGNMENT, graded.student, **({"timestamp": parse_utc(stamp)} if stamp else {}))
        for gid, verdict in graded.verdicts.items():
            grade = gb.find_grade(gid, notebook_id, ASSIGNMENT, graded.student)
            grade.auto_score = verdict.score
            grade.needs_manual_grade = grade.manual_score is not None
        for cell in release["cells"]:
            if cell["metadata"].get("nbgrader", {}).get("solution"):
                comment = gb.find_comment(grade_id(cell), notebook_id, ASSIGNMENT, graded.student)
                comment.auto_comment = "No response." if grade_id(cell) in graded.unanswered else None
        gb.db.commit()
    target = course.autograded(graded.student)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(graded.notebook or release, indent=1))
    log = course.log(graded.student)
    log.parent.mkdir(exist_ok=True)
    log.write_text(json.dumps({
        "student": graded.student, "score": graded.score, "max_score": sum(p.points for p in parts.values()),
        "seconds": round(graded.seconds, 2), "notes": graded.notes,
        "parts": {gid: dict(asdict(v), points=parts[gid].points) for gid, v in graded.verdicts.items()}}, indent=1))


def autograde(course, sandbox, students=None, workers=1, progress=True):
    """Grade `students` (default: everyone collected) with `workers` sandboxes at once; [Graded]."""
    course.require()
    alembic_on_path()
    sandbox.check()
    parts = {p.grade_id: p for p in course.parts()}
    release = course.release()
    tests = {grade_id(c): source_of(c) for c in json.loads(course.source_notebook.read_text())["cells"]
             if grade_id(c) in parts}
    seeds = [FIXTURE_SEED] + [secrets.randbelow(2**31) for _ in range(HIDDEN_FIXTURES)]  # never stored
    students = students or course.students()
    slots = queue.Queue()
    for slot in range(workers):
        slots.put(slot)

    def one(student):
        slot = slots.get()
        try:
            return grade_submission(course, student, parts, release, tests, seeds, sandbox, slot)
        except Exception as e:
            graded = failed(student, parts, e)
            graded.notes.append(traceback.format_exc(limit=-3))
            return graded
        finally:
            slots.put(slot)

    results = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(one, s) for s in students]
        for future in tqdm(as_completed(futures), total=len(futures), desc="autograde", disable=not progress):
            graded = future.result()
            record(course, graded, parts, release)
            results.append(graded)
    return sorted(results, key=lambda g: g.student)
