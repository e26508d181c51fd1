"""The harness without a sandbox: what it records, and that the student's code cannot stop it."""
from cl_course import selfcheck
from grader.sandbox import Limits, Sandbox

from .conftest import run_job, text
from .make_corpus import solution_sources


def code(source):
    return {"kind": "code", "source": source}


def test_cells_run_in_order_and_probes_record_results(tmp_path, student_site):
    sandbox = Sandbox(student_site, enabled=False)
    cells = [code("import torch, torch.nn.functional as F\nprint('hello')"), code(solution_sources()["si_importance"]),
             {"kind": "function", "name": "si_importance"}, code("q01 = {'b', 'a'}"),
             {"kind": "answer", "name": "q01"}, {"kind": "answer", "name": "q02"}, {"kind": "function", "name": "nope"}]
    outcome, done = run_job(sandbox, tmp_path, cells, seeds=[selfcheck.FIXTURE_SEED, 5])
    assert outcome.reason is None and sorted(done) == list(range(7))
    assert text(done[0]) == "hello\n"
    results = done[2]["probe"]["results"]
    names = {n for n, _ in selfcheck.fixture()["model"].named_parameters()}
    assert len(results) == 2 and set(results[0]["value"]["dict"]) == names
    assert done[4]["probe"] == {"answer": ["a", "b"]}
    assert done[5]["probe"] == {"missing": "q02 is not answered"}
    assert done[6]["probe"] == {"missing": "nope is not defined"}


def test_errors_outputs_and_the_student_rebinding_builtins(tmp_path, student_site):
    sandbox = Sandbox(student_site, enabled=False)
    cells = [code("1 / 0"), code("import sys\nprint('x' * 5000)\nprint('oops', file=sys.stderr)\n42"),
             code("import sys\nsys.exit(1)"), code("print('still here')"),
             code("import builtins\nbuiltins.isinstance = builtins.set = lambda *a: 0\nq01 = {'a'}"),
             {"kind": "answer", "name": "q01"}]
    outcome, done = run_job(sandbox, tmp_path, cells)
    assert outcome.reason is None
    assert done[0]["outputs"][-1]["ename"] == "ZeroDivisionError"
    out = {o.get("name") or o["output_type"]: o for o in done[1]["outputs"]}
    assert len(out["stdout"]["text"]) < 1200 and "more characters of output dropped" in out["stdout"]["text"]
    assert out["stderr"]["text"] == "oops\n" and out["execute_result"]["data"]["text/plain"] == "42"
    assert done[2]["outputs"][-1]["ename"] == "SystemExit" and text(done[3]) == "still here\n"
    assert done[5]["probe"] == {"answer": ["a"]}


def test_a_forked_child_stops_at_the_end_of_its_cell(tmp_path, student_site):
    sandbox = Sandbox(student_site, limits=Limits(cell_seconds=20), enabled=False)
    outcome, _ = run_job(sandbox, tmp_path, [code("import os\nchild = os.fork()"), code("print(os.getpid())")])
    assert outcome.reason is None
    dones = [e for e in outcome.entries if "done" in e]
    assert len(dones) == 2  # one per cell: the child wrote nothing
