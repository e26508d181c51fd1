"""Grading on a Dask LocalCluster of 2 worker processes gives the scores the local run gives, and
a worker killed mid-run costs nothing: its submissions run again elsewhere, each graded once."""
import json
import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from cl_course.data import data_root
from grader.autograde import autograde
from grader.cluster import ClusterError, open_pool
from grader.collect import collect
from grader.course import setup
from grader.sandbox import Sandbox

HERE = Path(__file__).parent
EXPECTED = json.loads((HERE / "expected.json").read_text())
# a correct one, typical mistakes, wrong quiz answers, Colab-mangled, not a notebook, a crash, tampering
STUDENTS = ["alice", "carol", "dave", "erin", "ivan", "judy", "mallory", "walter", "yann", "cody", "felix", "bea"]

pytestmark = pytest.mark.usefixtures("bwrap")


@pytest.fixture
def course(tmp_path):
    if not data_root().is_dir():
        pytest.skip("no MNIST data root: set CL_COURSE_DATA")
    downloads = tmp_path / "downloads"
    for student in STUDENTS:
        source = HERE / "submissions" / EXPECTED[student]["file"]
        target = downloads / EXPECTED[student]["file"]
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, target)
    course = setup(tmp_path / "course")
    assert sorted(collect(course, downloads).students) == sorted(STUDENTS)
    return course


def scores(graded):
    return {g.student: {gid: v.score for gid, v in g.verdicts.items()} for g in graded}


def test_the_cluster_grades_as_the_local_run(course):
    sandbox = Sandbox(course.student_site, data_root())
    with open_pool(sandbox, 2, cluster="local") as pool:
        graded = autograde(course, sandbox, workers=2, progress=False, pool=pool)
    assert scores(graded) == {s: EXPECTED[s]["parts"] for s in STUDENTS}


def test_a_worker_killed_mid_run_loses_nothing(course):
    sandbox = Sandbox(course.student_site, data_root())
    with open_pool(sandbox, 2, cluster="local") as pool:
        client = pool.executor._client
        pids = client.run(os.getpid)
        killed = []

        def kill_a_busy_worker():
            for _ in range(600):
                busy = [w for w, tasks in client.processing().items() if tasks]
                if busy:
                    os.kill(pids[busy[0]], 9)
                    killed.append(busy[0])
                    return
                time.sleep(0.05)

        killer = threading.Thread(target=kill_a_busy_worker)
        killer.start()
        graded = autograde(course, sandbox, workers=2, progress=False, pool=pool)
        killer.join()
    assert killed, "no worker was busy"
    assert sorted(g.student for g in graded) == sorted(STUDENTS)  # each once
    assert scores(graded) == {s: EXPECTED[s]["parts"] for s in STUDENTS}
    logs = {p.stem for p in course.path("grading").glob("*.json")}
    assert logs == set(STUDENTS)


def test_cluster_options_are_checked(course, monkeypatch):
    monkeypatch.setattr("grader.cluster.CONNECT_SECONDS", 2)
    sandbox = Sandbox(course.student_site, data_root())
    with pytest.raises(ClusterError, match="not both"), open_pool(sandbox, 2, "tcp://x:1", "local"):
        pass
    with pytest.raises(ClusterError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:9"), \
            open_pool(sandbox, 2, "tcp://127.0.0.1:9"):
        pass
