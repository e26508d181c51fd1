"""Autograding speed: N copies of a fully correct submission graded in the sandbox with 1 and with
2 workers, one after the other in one run. Target: at most 15 s per submission (grading profile).

    python benchmarks/grading.py [--submissions 8] [--data-root ../shared/data]

Each copy runs the whole notebook (the grading profile's training included) and is judged on
hidden fixtures, exactly as `python -m grader autograde` does.
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
from grader.course import setup  # noqa: E402
from grader.sandbox import Sandbox  # noqa: E402

CORRECT = Path(__file__).resolve().parents[1] / "grader" / "tests" / "submissions" / "alice" / "hw14_lifelong_learning.ipynb"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=8)
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
        print("| workers | total s | s per submission | slowest submission s |")
        print("|---|---|---|---|")
        for workers in (1, 2):
            start = time.perf_counter()
            graded = autograde(course, sandbox, students, workers, progress=False)
            total = time.perf_counter() - start
            assert all(g.score == 38 for g in graded), [(g.student, g.score, g.notes) for g in graded]
            print(f"| {workers} | {total:.1f} | {total / len(graded):.1f} | {max(g.seconds for g in graded):.1f} |")


if __name__ == "__main__":
    main()
