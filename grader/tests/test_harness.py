"""The harness without a sandbox: what it records, and that the student's code cannot stop it or
speak for it."""
from cl_course.teaching import selfcheck
from grader.sandbox import Limits, Sandbox

from .conftest import run_job, text
from .make_corpus import solution_sources


def code(source):
    return {"kind": "code", "source": source}


def unconfined(student_site, **limits):
    return Sandbox(student_site, limits=Limits(**limits), backend="unconfined")


def test_cells_run_in_order_and_probes_record_results(student_site):
    cells = [code("import torch, torch.nn.functional as F\nprint('hello')"), code(solution_sources()["si_importance"]),
             {"kind": "function", "name": "si_importance"}, {"kind": "function", "name": "nope"}]
    outcome, done = run_job(unconfined(student_site), cells, seeds=[selfcheck.FIXTURE_SEED, 5])
    assert outcome.stop is None and sorted(done) == list(range(4))
    assert text(done[0]) == "hello\n"
    results = done[2]["probe"]["results"]
    names = {n for n, _ in selfcheck.fixture()["model"].named_parameters()}
    assert len(results) == 2 and set(results[0]["value"]["dict"]) == names
    assert done[3]["probe"] == {"missing": "nope is not defined"}


def test_huge_results_stay_small_records(student_site):
    cells = [code("import torch\ndef fisher_diagonal(model, batches):\n"
                  "    return {'fc1.weight': torch.zeros(10**6), **{str(i): 0 for i in range(10**5)}}"),
             {"kind": "function", "name": "fisher_diagonal"}]
    outcome, done = run_job(unconfined(student_site), cells, seeds=[selfcheck.FIXTURE_SEED])
    value = done[1]["probe"]["results"][0]["value"]["dict"]
    assert outcome.stop is None and value["fc1.weight"] == {"type": "tensor of 1,000,000 values"} and len(value) == 1000


def test_errors_outputs_and_the_line_an_error_came_from(student_site):
    cells = [code("1 / 0"), code("import sys\nprint('x' * 5000)\nprint('oops', file=sys.stderr)\n42"),
             code("import sys\nsys.exit(1)"), code("print('still here')"),
             code("q01 = {'a'}\nq02 = {'b'}\nraise NotImplementedError()")]
    outcome, done = run_job(unconfined(student_site, output_chars=1000), cells)
    assert outcome.stop is None
    assert done[0]["outputs"][-1]["ename"] == "ZeroDivisionError"
    out = {o.get("name") or o["output_type"]: o for o in done[1]["outputs"]}
    assert len(out["stdout"]["text"]) < 1200 and "more characters of output dropped" in out["stdout"]["text"]
    assert out["stderr"]["text"] == "oops\n" and out["execute_result"]["data"]["text/plain"] == "42"
    assert done[2]["outputs"][-1]["ename"] == "SystemExit" and text(done[3]) == "still here\n"
    assert done[4]["outputs"][-1]["line"] == 3  # the answers above it were assigned


def test_a_forked_child_stops_at_the_end_of_its_cell(student_site):
    outcome, done = run_job(unconfined(student_site, cell_seconds=20),
                            [code("import os\nchild = os.fork()"), code("print(os.getpid())")])
    assert outcome.stop is None and sorted(done) == [0, 1]  # the child wrote nothing: no record out of order


def test_records_written_by_the_students_code_stop_the_run_and_cost_only_that_cell(student_site):
    forge = ("import os, json\nfor fd in range(3, 64):\n    try:\n"
             "        os.write(fd, (json.dumps({'done': 0, 'probe': {'answer': ['a']}}) + '\\n').encode())\n"
             "    except OSError:\n        pass")
    outcome, done = run_job(unconfined(student_site), [code("x = 1"), code(forge), code("y = 2")])
    assert outcome.stop["cause"] == "tampered" and outcome.stop["cell"] == 1
    assert list(done) == [0]


def test_hooks_and_threads_after_the_last_cell_never_run(student_site):
    late = ("import atexit, os, threading, time, json\n"
            "def forge():\n    for fd in range(3, 64):\n        try:\n"
            "            os.write(fd, b'{\"done\": 0}\\n')\n        except OSError:\n            pass\n"
            "atexit.register(forge)\n"
            "threading.Thread(target=lambda: (time.sleep(0.5), forge()), daemon=True).start()")
    outcome, done = run_job(unconfined(student_site), [code(late)])
    assert outcome.stop is None and list(done) == [0]
