"""Grading on a Dask LocalCluster of 2 worker processes gives the scores expected.json gives, through
the CLI, for a case of every outcome and attack of the corpus (test_corpus.py grades all of it locally,
with the same run_cells on the same sandbox), and a worker killed mid-run costs nothing: its submission
runs again elsewhere and every student is graded and recorded once."""
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

import grader.autograde
from cl_course.data import data_root
from grader.autograde import autograde
from grader.cluster import ClusterError, open_pool
from grader.collect import collect
from grader.course import setup
from grader.sandbox import Sandbox

HERE = Path(__file__).parent
REPO = HERE.parents[1]
EXPECTED = json.loads((HERE / "expected.json").read_text())["hw14"]
KILL_TEST = ["alice", "carol", "dave", "erin", "ivan", "judy"]  # ordinary runs of a few seconds each
# a case of each outcome and attack, as run on a worker: right, wrong, unanswered, Colab-mangled, not a notebook;
# tampering, escapes, links to the TA's files, hogs; a crash, an exit, a segfault, memory, a fork bomb; an
# endless loop. Left out: sam's and tim's cells given a second chance (3 minutes together; the decision
# is autograde's, before a run is sent anywhere, and test_corpus.py grades them)
ON_THE_CLUSTER = ["alice", "bob", "carol", "judy", "mallory", "cody", "quinn", "zoe", "hugo", "ursula", "victor",
                  "walter", "sybil", "trent", "rupert"]

pytestmark = pytest.mark.usefixtures("bwrap")


@pytest.fixture(autouse=True)
def data():
    if not data_root().is_dir():
        pytest.skip("no MNIST data root: set CL_COURSE_DATA")


def grader_cli(*args):
    done = subprocess.run([sys.executable, "-m", "grader", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=1800, env=dict(os.environ, OMP_NUM_THREADS="1", CL_COURSE_DATA=str(data_root())))
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def logged_scores(course, students):
    logs = {s: json.loads((course / "grading" / "hw14" / f"{s}.json").read_text()) for s in students}
    return {s: {gid: part["score"] for gid, part in log["parts"].items()} for s, log in logs.items()}


def test_the_cluster_grades_a_case_of_every_outcome_as_expected(tmp_path):
    course = tmp_path / "course"
    grader_cli("setup", str(course))
    grader_cli("collect", str(HERE / "submissions"), "--course", str(course))
    out = grader_cli("autograde", "--course", str(course), "--cluster", "local", "--workers", "2",
                     *[f"--student={s}" for s in ON_THE_CLUSTER])
    assert logged_scores(course, ON_THE_CLUSTER) == {s: EXPECTED[s]["parts"] for s in ON_THE_CLUSTER}
    assert {p.stem for p in (course / "grading" / "hw14").glob("*.json")} == set(ON_THE_CLUSTER)
    assert all(f"{s}: {EXPECTED[s]['total']:g} / " in out for s in ON_THE_CLUSTER)


def kill_once_a_sandbox_runs(client, killed):
    """SIGKILL the first worker seen running a submission's sandbox (a bwrap child)."""
    pids = client.run(os.getpid)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for worker, pid in pids.items():
            with_sandbox = any(c.name() == "bwrap" for c in psutil.Process(pid).children(recursive=True))
            if with_sandbox and client.processing()[worker]:
                os.kill(pid, 9)
                killed.append(worker)
                return
        time.sleep(0.1)


def test_a_worker_killed_mid_run_loses_nothing(tmp_path, monkeypatch):
    downloads = tmp_path / "downloads"
    for student in KILL_TEST:
        (downloads / student).mkdir(parents=True)
        shutil.copy(HERE / "submissions" / EXPECTED[student]["file"], downloads / student)
    course = setup(tmp_path / "course", ["hw14"])[0]
    assert sorted(collect(course, downloads).students) == KILL_TEST
    recorded = []
    record = grader.autograde.record
    monkeypatch.setattr(grader.autograde, "record", lambda c, graded, *a: (recorded.append(graded.student),
                                                                            record(c, graded, *a)))
    sandbox = Sandbox(course.student_site, data_root())
    with open_pool(sandbox, 2, cluster="local") as pool:
        client = pool.executor._client
        assert set(client.run(os.environ.get, "OMP_NUM_THREADS").values()) == {"1"}
        killed = []
        killer = threading.Thread(target=kill_once_a_sandbox_runs, args=(client, killed))
        killer.start()
        graded = autograde(course, sandbox, workers=2, progress=False, pool=pool)
        killer.join()
    assert killed, "no worker was seen running a sandbox"
    assert sorted(recorded) == KILL_TEST  # each once
    assert {g.student: {gid: v.score for gid, v in g.verdicts.items()} for g in graded} == \
        {s: EXPECTED[s]["parts"] for s in KILL_TEST}
    assert {p.stem for p in course.path("grading", course.assignment).glob("*.json")} == set(KILL_TEST)
    assert logged_scores(course.root, KILL_TEST) == {s: EXPECTED[s]["parts"] for s in KILL_TEST}


def test_cluster_options_and_workers_are_checked(tmp_path, monkeypatch, student_site):
    monkeypatch.setattr("cl_course.cluster.CONNECT_SECONDS", 2)  # where the grader opens its client
    sandbox = Sandbox(student_site, data_root())
    with pytest.raises(ClusterError, match="not both"), open_pool(sandbox, 2, "tcp://x:1", "local"):
        pass
    with pytest.raises(ClusterError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:9"), \
            open_pool(sandbox, 2, "tcp://127.0.0.1:9"):
        pass
    sandbox.data_root = tmp_path / "elsewhere"  # as on a worker that lacks the TA's data root
    with pytest.raises(ClusterError, match=r"cannot grade: the data root .*elsewhere is not there: every worker"), \
            open_pool(sandbox, 1, cluster="local"):
        pass
