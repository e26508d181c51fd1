"""The sandbox holds: no network, no reads of the course or the instructor's sources, no writes
outside scratch, nothing read back from scratch, and limits per sandbox on time, memory, processes,
CPU share and disk that end in a clear reason."""
import os
import subprocess
import threading

import pytest

from grader.confinement import Cgroup, own_cgroups
from grader.release import ROOT
from grader.sandbox import Limits, Sandbox, SandboxError

from .conftest import run_job, text

pytestmark = pytest.mark.usefixtures("bwrap")
ROOT_ONLY = pytest.mark.skipif(os.getuid() != 0, reason="per-sandbox uids, cgroups and tmpfs mounts need root")


def code(source):
    return {"kind": "code", "source": source}


def sandbox(student_site, **limits):
    return Sandbox(student_site, limits=Limits(**limits))


def test_no_network_no_secrets_no_writes_outside_scratch(tmp_path, student_site):
    secret = tmp_path / "gradebook.db"
    secret.write_text("the course's gradebook")
    probe = f'''
import os, socket, pathlib, subprocess
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
print("write grader:", attempt(lambda: pathlib.Path("/grader/x").write_text("x")))
print("write root:", attempt(lambda: pathlib.Path("/x").write_text("x")))
print("write scratch:", attempt(lambda: pathlib.Path("/scratch/x").write_text("x")))
import cl_course.importance as imp, inspect
source = inspect.getsource(imp)
print("reference:", "BEGIN SOLUTION" in source or "autograd.grad" in inspect.getsource(imp.fisher_diagonal))
'''
    outcome, done = run_job(sandbox(student_site), [code(probe)])
    assert outcome.stop is None, outcome.stop
    lines = dict(line.split(": ", 1) for line in text(done[0]).splitlines())
    assert lines["network"] == "OSError"
    assert lines["loopback"] == "ConnectionRefusedError"
    assert lines["gradebook"] == "FileNotFoundError"
    assert lines["instructor"] == "FileNotFoundError"
    assert lines["write grader"] in ("OSError", "PermissionError")
    assert lines["write root"] == "PermissionError"
    assert lines["write scratch"] == "yes"
    assert lines["reference"] == "False"


def test_the_sandbox_shows_no_host_details_and_makes_no_user_namespaces(student_site):
    probe = """
import getpass, os, socket, subprocess
print("users:", sorted(line.split(":")[0] for line in open("/etc/passwd")))
print("me:", getpass.getuser())
print("hostname:", socket.gethostname())
print("hosts:", open("/etc/hosts").read().split())
print("etc:", sorted(os.listdir("/etc")))
print("cmdline:", open("/proc/1/cmdline", "rb").read().replace(b"\\0", b" ").decode())
print("unshare:", subprocess.run(["unshare", "-Ur", "true"], capture_output=True).returncode)
import tempfile
print("tempfile:", tempfile.mkstemp()[1].startswith("/scratch/"))
try:  # /tmp is the scratch, or read-only where the Python environment lives under the host's /tmp
    open("/tmp/x", "w").write("x")
    print("tmp:", os.path.realpath("/tmp"), os.path.exists("/scratch/x"))
except OSError:
    print("tmp: read-only")
"""
    outcome, done = run_job(sandbox(student_site), [code(probe)])
    assert outcome.stop is None, outcome.stop
    lines = dict(line.split(": ", 1) for line in text(done[0]).splitlines())
    assert lines["users"] == "['root', 'student']" and lines["me"] == "student"
    assert lines["hostname"] == "sandbox" and lines["hosts"] == "['127.0.0.1', 'localhost', '::1', 'localhost']"
    assert "shadow" not in lines["etc"] and "hostname" in lines["etc"]
    # the sandbox's own host folders (cl-grade-*), the student site and the data root are not named; the Python
    # environment, bound at its own path, is
    assert "cl-grade-" not in lines["cmdline"] and str(student_site) not in lines["cmdline"], lines["cmdline"]
    assert lines["cmdline"].startswith("bwrap --args ")
    assert lines["unshare"] != "0", "unshare -Ur made a user namespace in the sandbox"
    assert lines["tempfile"] == "True" and lines["tmp"] in ("/scratch True", "read-only")


def test_no_network_from_shell_escapes_and_magics(student_site):
    cells = [code("!python3 -c \"import socket; socket.create_connection(('1.1.1.1', 53), timeout=2); print('NET')\""),
             code("%load https://example.com/x.py"),
             code("%%bash\npython3 -c \"import urllib.request; urllib.request.urlopen('http://1.1.1.1', timeout=2); "
                  "print('NET')\" 2>&1 | tail -1")]
    outcome, done = run_job(sandbox(student_site), cells)
    assert outcome.stop is None, outcome.stop
    assert all("NET\n" not in text(done[i]) for i in range(3))


def test_an_endless_cell_is_stopped_from_outside_by_its_cpu_time(student_site):
    outcome, done = run_job(sandbox(student_site, cell_seconds=2),
                            [code("print('before')"), code("try:\n    while True: pass\nexcept BaseException: pass")])
    assert outcome.stop["cell"] == 1 and outcome.stop["cause"] == "timed out"
    assert text(done[0]) == "before\n"


def test_a_sleeping_cell_is_stopped_by_the_wall_clock(student_site):
    outcome, _ = run_job(sandbox(student_site, cell_seconds=1, wall_factor=3), [code("import time\ntime.sleep(60)")])
    assert outcome.stop["cause"] == "timed out" and "longer than 3 s" in outcome.stop["detail"]


@pytest.mark.parametrize("source, reason", [
    ("import os\nos._exit(3)", "exited with status 3"),
    ("import ctypes\nctypes.string_at(0)", "crashed (segmentation fault)"),
])
def test_a_crash_names_the_cell_and_why(student_site, source, reason):
    outcome, _ = run_job(sandbox(student_site), [code("x = 1"), code(source), code("y = 2")])
    assert outcome.stop["cell"] == 1 and outcome.stop["cause"] == "crashed" and reason in outcome.stop["detail"]


def test_memory_of_one_process_is_limited(student_site):
    outcome, done = run_job(sandbox(student_site, process_memory_mb=1024), [code("hog = bytearray(2 * 1024**3)")])
    assert outcome.stop is None and done[0]["outputs"][-1]["ename"] == "MemoryError"


@ROOT_ONLY
def test_memory_of_all_processes_together_is_limited(student_site):
    """Four processes under the per-process limit, over the sandbox's total: not all of them get it."""
    spread = ("import os, time\nkids = []\nfor _ in range(4):\n    pid = os.fork()\n    if pid == 0:\n"
              "        try:\n            hog = b'x' * (600 * 1024**2)\n            time.sleep(3)\n"
              "            os._exit(0)\n"
              "        except MemoryError:\n            os._exit(1)\n    kids.append(pid)\n"
              "print('got it:', sum(os.waitpid(k, 0)[1] == 0 for k in kids))")
    outcome, done = run_job(sandbox(student_site, memory_mb=1800, process_memory_mb=1500), [code(spread)])
    assert outcome.stop is not None or text(done[0]) in ("got it: 0\n", "got it: 1\n", "got it: 2\n")


@ROOT_ONLY
def test_a_fork_bomb_hits_the_process_limit_and_leaves_nothing_behind(student_site):
    bomb = "import os, time\nprint(os.getuid())\nchildren = 0\ntry:\n    while True:\n        if os.fork() == 0:\n" \
           "            time.sleep(60)\n            os._exit(0)\n        children += 1\nexcept OSError as e:\n" \
           "    print('stopped after', children, type(e).__name__)"
    outcome, done = run_job(sandbox(student_site, processes=32, cell_seconds=20), [code(bomb)])
    assert outcome.stop is None, outcome.stop
    uid, result = text(done[0]).splitlines()
    assert result.startswith("stopped after") and int(result.split()[2]) < 32
    left = subprocess.run(["pgrep", "-u", uid], capture_output=True, text=True).stdout
    assert left == "", f"processes of the sandbox's uid survived: {left}"


@ROOT_ONLY
def test_scratch_is_capped_in_bytes_and_inodes(student_site):
    fill = ("import os\nn = 0\ntry:\n    while True:\n        os.mkdir(f'd{n}')\n        n += 1\nexcept OSError as e:\n"
            "    print('folders', n, e.errno)\ntry:\n    for i in range(100):\n"
            "        open(f'f{i}', 'wb').write(b'x' * 8 * 1024**2)\n"
            "except OSError as e:\n    print('bytes', i, e.errno)")
    outcome, done = run_job(sandbox(student_site, scratch_mb=64, file_mb=16, scratch_inodes=500), [code(fill)])
    assert outcome.stop is None, outcome.stop
    folders, written = text(done[0]).splitlines()
    assert int(folders.split()[1]) < 500 and written.startswith("bytes") and int(written.split()[1]) <= 8


def test_nothing_is_read_back_from_scratch(tmp_path, student_site):
    """Links, FIFOs and huge files where the grader once read its results and logs change nothing."""
    secret = tmp_path / "token"
    secret.write_text("TA_API_TOKEN=123")
    trap = (f"import os\nfor name in ('stderr.txt', 'stdout.txt'):\n    os.symlink({str(secret)!r}, name)\n"
            "os.mkfifo('results.jsonl')\nimport sys\nprint('boom', file=sys.__stderr__)")
    outcome, done = run_job(sandbox(student_site), [code(trap), code("print('next')")])
    assert outcome.stop is None and text(done[1]) == "next\n"
    assert "TA_API_TOKEN" not in outcome.output


@pytest.mark.parametrize("payload", [
    '{"start": NaN}', '{"start": 0}', "[" * 100000, '{"done": 0, "probe": {}}', '{"end": true}',
])
def test_anything_written_to_the_channel_stops_the_run_as_tampering(student_site, payload):
    line = (payload + "\n").encode()
    forge = f"import os\nfor fd in range(3, 64):\n    try:\n        os.write(fd, {line!r})\n" \
            "    except OSError:\n        pass\nimport time\ntime.sleep(30)"
    outcome, done = run_job(sandbox(student_site, cell_seconds=5), [code("x = 1"), code(forge)])
    assert outcome.stop["cause"] == "tampered" and outcome.stop["cell"] == 1 and list(done) == [0]


def test_a_flood_on_the_channel_is_cut_off(student_site):
    flood = "import os\nfor fd in range(3, 64):\n    try:\n        os.write(fd, b'x' * 1024)\n" \
            "    except OSError:\n        pass\nwhile True:\n    os.write(3, b'x' * (1 << 20))"
    outcome, _ = run_job(sandbox(student_site, cell_seconds=20, channel_mb=8), [code(flood)])
    assert outcome.stop["cause"] == "tampered"


def test_a_record_of_millions_of_empty_values_is_refused_unparsed():
    """Well-formed records in the job's order, as the student's code could forge them for its own cell."""
    import json as js
    import tracemalloc

    from grader.sandbox import RECORD_VALUES, RUN_VALUES, Channel
    cells = [{"index": i} for i in range(30)]
    flood = Channel(cells, 64 << 20)
    tracemalloc.start()
    flood.feed(b'{"start": 0}\n{"done": 0, "outputs": [' + b"{}," * 2_000_000 + b'{}]}\n')
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert flood.violation.startswith(f"sent more than {RECORD_VALUES:,} values") and peak < 40 << 20, peak >> 20
    many = Channel(cells, 64 << 20)  # each record within the bound, the run's total not
    for i in range(30):
        outputs = js.dumps([{}] * (RECORD_VALUES - 10))
        many.feed(f'{{"start": {i}}}\n{{"done": {i}, "outputs": {outputs}}}\n'.encode())
    assert many.violation and len(many.done) == RUN_VALUES // RECORD_VALUES
    honest = Channel(cells[:1], 64 << 20)
    honest.feed(b'{"start": 0}\n{"done": 0, "outputs": [{"output_type": "stream", "text": "x"}]}\n{"end": true}\n')
    assert honest.violation is None and honest.ended


@ROOT_ONLY
def test_two_sandboxes_never_share_a_uid_and_share_the_cpu(student_site):
    """20 spinning processes in one sandbox do not make another's CPU-bound cell time out."""
    uid = code("import os\nprint(os.getuid())")
    spin = "import os, time\nfor _ in range(20):\n    if os.fork() == 0:\n        while True: pass\ntime.sleep(25)"
    work = "import time\ntime.sleep(3)\nt = time.process_time()\nwhile time.process_time() - t < 2: pass"
    outcomes = {}

    def run(name, source, seconds):
        outcomes[name] = run_job(sandbox(student_site, cell_seconds=seconds, run_seconds=60), [uid, code(source)])

    attacker = threading.Thread(target=run, args=("attacker", spin, 30))
    attacker.start()
    run("victim", work, 6)
    attacker.join()
    outcome, done = outcomes["victim"]
    assert outcome.stop is None, outcome.stop
    assert outcomes["attacker"][0].stop["cause"] == "timed out"  # 20 processes' CPU time counts as the cell's
    assert int(text(done[0])) != int(text(outcomes["attacker"][1][0]))


def test_cgroup_files_of_both_versions(tmp_path):
    """The control files a group writes, on fake cgroup trees (this machine has one version at most)."""
    v2 = tmp_path / "v2"
    (v2 / "grader").mkdir(parents=True)
    (v2 / "cgroup.controllers").write_text("memory pids cpu")
    group = Cgroup.create("box", 1 << 30, 64, root=v2, own=own_cgroups("0::/grader"))
    assert group.version == 2 and (v2 / "grader" / "cgroup.subtree_control").read_text() == "+memory +pids +cpu"
    assert (v2 / "grader/box/memory.max").read_text() == str(1 << 30)
    assert (v2 / "grader/box/pids.max").read_text() == "64"
    v1 = tmp_path / "v1"
    for c in ("memory", "pids", "cpuacct"):
        (v1 / c / "a").mkdir(parents=True)
    group = Cgroup.create("box", 1 << 30, 64, root=v1, own=own_cgroups("4:memory:/a\n3:pids:/a\n2:cpuacct:/a"))
    assert group.version == 1 and (v1 / "memory/a/box/memory.limit_in_bytes").read_text() == str(1 << 30)
    assert Cgroup.create("box", 1, 1, root=tmp_path / "none", own={}) is None


def test_what_a_killed_grader_left_behind_is_found_and_removed(tmp_path):
    """Cgroups and scratch mounts named by a grader pid that is gone, on a fake cgroup v1 tree and mount table."""
    from pathlib import Path

    from grader.confinement import stale_cgroups, stale_scratches
    finished = subprocess.Popen(["true"])
    finished.wait()
    dead, alive = finished.pid, os.getpid()
    v1 = tmp_path / "v1"
    for c in ("memory", "pids", "cpuacct"):
        for name in (f"cl-grade-{dead}-61000-1", f"cl-grade-{alive}-61001-2", "cl-grade-sites-0", "other"):
            (v1 / c / "a" / name).mkdir(parents=True)
    (v1 / "memory" / "a" / f"cl-grade-{dead}-61002-3").mkdir()  # half made: its pids folder was refused
    stale = stale_cgroups(root=v1, own=own_cgroups("4:memory:/a\n3:pids:/a\n2:cpuacct:/a"))
    assert [sorted(d.name for d in g.dirs.values()) for g in stale] == [[f"cl-grade-{dead}-61000-1"] * 3,
                                                                        [f"cl-grade-{dead}-61002-3"]]
    for group in stale:
        group.remove()
    assert not (v1 / "memory" / "a" / f"cl-grade-{dead}-61002-3").exists()
    assert sorted(d.name for d in (v1 / "pids" / "a").iterdir()) == sorted(
        [f"cl-grade-{alive}-61001-2", "cl-grade-sites-0", "other"])
    mounts = (f"tmpfs /tmp/cl-grade-{dead}-k2j/scratch tmpfs rw 0 0\n"
              f"tmpfs /tmp/cl-grade-{alive}-x/scratch tmpfs rw 0 0\n"
              f"/dev/sda1 /tmp/cl-grade-{dead}-q/scratch ext4 rw 0 0\ntmpfs /run tmpfs rw 0 0")
    assert stale_scratches(mounts) == [Path(f"/tmp/cl-grade-{dead}-k2j/scratch")]


def test_a_relative_data_root_is_resolved_and_a_missing_one_named(tmp_path, student_site, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mnist").mkdir()
    assert Sandbox(student_site, "mnist").data_root == tmp_path / "mnist"
    with pytest.raises(SandboxError, match="the data root .*nowhere is not a folder"):
        Sandbox(student_site, "nowhere")


def test_no_bwrap_means_a_clear_refusal(tmp_path, student_site, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SandboxError, match="bubblewrap \\(bwrap\\) is not installed.*--no-sandbox"):
        sandbox(student_site).check()
