"""The sandbox holds: no network, no reads of the course or the instructor's sources, no writes
outside scratch, and limits on time, memory, processes and disk that end in a clear reason."""
import os
import subprocess

import pytest

from grader.release import ROOT
from grader.sandbox import Limits, Sandbox, SandboxError

from .conftest import run_job, text

pytestmark = pytest.mark.usefixtures("bwrap")


def code(source):
    return {"kind": "code", "source": source}


def sandbox(student_site, **limits):
    return Sandbox(student_site, limits=Limits(**limits))


def test_no_network_no_secrets_no_writes_outside_scratch(tmp_path, student_site):
    secret = tmp_path / "gradebook.db"
    secret.write_text("the course's gradebook")
    probe = f'''
import os, socket, pathlib
def attempt(f):
    try:
        f()
        return "yes"
    except Exception as e:
        return type(e).__name__
print("network:", attempt(lambda: socket.create_connection(("1.1.1.1", 53), timeout=2)))
print("loopback:", attempt(lambda: socket.create_connection(("127.0.0.1", 22), timeout=2)))
print("gradebook:", attempt(lambda: pathlib.Path({str(secret)!r}).read_text()))
print("instructor:", attempt(lambda: pathlib.Path({str(ROOT / "cl_course" / "importance.py")!r}).read_text()))
print("write job:", attempt(lambda: pathlib.Path("/job/x").write_text("x")))
print("write root:", attempt(lambda: pathlib.Path("/x").write_text("x")))
print("write scratch:", attempt(lambda: pathlib.Path("/scratch/x").write_text("x")))
import cl_course.importance as imp, inspect
print("reference:", "BEGIN SOLUTION" in inspect.getsource(imp) or "autograd.grad" in inspect.getsource(imp.fisher_diagonal))
print("uid:", os.getuid() != 0 or os.getuid() == {os.getuid()})
'''
    outcome, done = run_job(sandbox(student_site), tmp_path, [code(probe)])
    assert outcome.reason is None, outcome.reason
    lines = dict(line.split(": ", 1) for line in text(done[0]).splitlines())
    assert lines["network"] == "OSError"
    assert lines["loopback"] == "ConnectionRefusedError"
    assert lines["gradebook"] == "FileNotFoundError"
    assert lines["instructor"] == "FileNotFoundError"
    assert lines["write job"] in ("OSError", "PermissionError")
    assert lines["write root"] == "PermissionError"
    assert lines["write scratch"] == "yes"
    assert lines["reference"] == "False"


def test_an_endless_cell_is_stopped_from_outside(tmp_path, student_site):
    outcome, done = run_job(sandbox(student_site, cell_seconds=2), tmp_path,
                            [code("print('before')"), code("try:\n    while True: pass\nexcept BaseException: pass")])
    assert outcome.stopped_in == 1 and outcome.reason.startswith("the cell ran longer than 2 s")
    assert text(done[0]) == "before\n"


@pytest.mark.parametrize("source, reason", [
    ("import os\nos._exit(3)", "exited with status 3"),
    ("import ctypes\nctypes.string_at(0)", "crashed (segmentation fault)"),
])
def test_a_crash_names_the_cell_and_why(tmp_path, student_site, source, reason):
    outcome, _ = run_job(sandbox(student_site), tmp_path, [code("x = 1"), code(source), code("y = 2")])
    assert outcome.stopped_in == 1 and reason in outcome.reason


def test_memory_is_limited(tmp_path, student_site):
    outcome, done = run_job(sandbox(student_site, memory_mb=1024), tmp_path, [code("hog = bytearray(2 * 1024**3)")])
    assert outcome.reason is None and done[0]["outputs"][-1]["ename"] == "MemoryError"


@pytest.mark.skipif(os.getuid() != 0, reason="process limits are per uid: the sandbox's own uid needs root")
def test_a_fork_bomb_hits_the_process_limit_and_leaves_nothing_behind(tmp_path, student_site):
    bomb = "import os, time\nchildren = 0\ntry:\n    while True:\n        if os.fork() == 0:\n" \
           "            time.sleep(60)\n            os._exit(0)\n        children += 1\nexcept OSError as e:\n" \
           "    print('stopped after', children, type(e).__name__)"
    outcome, done = run_job(sandbox(student_site, processes=32, cell_seconds=20), tmp_path, [code(bomb)], slot=7)
    assert outcome.reason is None, outcome.reason
    assert text(done[0]).startswith("stopped after") and int(text(done[0]).split()[2]) < 32
    left = subprocess.run(["pgrep", "-u", str(61007)], capture_output=True, text=True).stdout
    assert left == "", f"processes of the sandbox's uid survived: {left}"


def test_disk_use_in_scratch_is_limited(tmp_path, student_site):
    fill = "for i in range(100):\n    open(f'f{i}', 'wb').write(b'x' * 8 * 1024**2)\nimport time\ntime.sleep(5)"
    outcome, _ = run_job(sandbox(student_site, scratch_mb=64, file_mb=16), tmp_path, [code(fill)])
    assert outcome.reason == "the notebook wrote more than 64 MB of files and was stopped"


def test_no_bwrap_means_a_clear_refusal(tmp_path, student_site, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SandboxError, match="bubblewrap \\(bwrap\\) is not installed.*--no-sandbox"):
        sandbox(student_site).check()
