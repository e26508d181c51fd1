"""Autograding speed: N copies of a fully correct submission graded in the sandbox with 1 and 2
local workers and on a Dask LocalCluster of 2 worker processes, one after the other in one run.
Target: at most 5 s per submission with 2 workers.

    python benchmarks/grading.py [--submissions 16] [--data-root ../shared/data]

Each copy is graded exactly as `python -m grader autograde` does: repaired, run in the sandbox
(the grading profile; cells tagged skip-when-grading, training and figures, are not run) and
judged on hidden fixtures. The cluster's overhead is its seconds per submission minus the local
run's with the same number of workers.
"""
import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cl_course.data import data_root  # noqa: E402
from grader.autograde import autograde  # noqa: E402
from grader.cluster import open_pool  # noqa: E402
from grader.course import setup  # noqa: E402
from grader.sandbox import Sandbox  # noqa: E402

CORPUS = Path(__file__).resolve().parents[1] / "grader" / "tests" / "submissions"
CORRECT = CORPUS / "alice" / "hw14_lifelong_learning.ipynb"


def timed(course, sandbox, students, workers, cluster=None):
    with open_pool(sandbox, workers, cluster=cluster) as pool:  # a cluster's start-up is not counted
        start = time.perf_counter()
        graded = autograde(course, sandbox, students, workers, progress=False, pool=pool)
        total = time.perf_counter() - start
    assert all(g.score == 38 for g in graded), [(g.student, g.score, g.notes) for g in graded]
    return total, max(g.seconds for g in graded)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=16)
    parser.add_argument("--data-root", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        course = setup(Path(tmp) / "course")
        students = [f"student{i:02d}" for i in range(args.submissions)]
        for s in students:
            course.submitted(s).parent.mkdir(parents=True)
            shutil.copy(CORRECT, course.submitted(s))
        sandbox = Sandbox(course.student_site, data_root(args.data_root))
        print(f"{args.submissions} submissions, sandboxed, grading profile")
        print("| where | workers | total s | s per submission | slowest run s |")
        print("|---|---|---|---|---|")
        per = {}
        for where, workers, cluster in (("here", 1, None), ("here", 2, None), ("Dask LocalCluster", 2, "local")):
            total, slowest = timed(course, sandbox, students, workers, cluster)
            per[where, workers] = total / len(students)
            print(f"| {where} | {workers} | {total:.1f} | {per[where, workers]:.2f} | {slowest:.1f} |")
        overhead = per["Dask LocalCluster", 2] - per["here", 2]
        print(f"\ncluster overhead per submission (2 workers): {overhead:+.2f} s")


if __name__ == "__main__":
    main()
