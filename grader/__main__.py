"""python -m grader: the course's instructor and TA commands, in the order a TA runs them."""
import argparse
import sys
from pathlib import Path

from .assignments import ASSIGNMENTS, DEFAULT, AssignmentError, not_written_yet, written
from .release import ReleaseError

STEPS = f"""the TA's workflow:
  setup COURSE      create the course folder and gradebook, every assignment in it (once)
  release --repo R  write the students' public repository R (OWNER/NAME) into release/
  collect PATH      take the downloaded notebooks (a folder or an LMS zip)
  autograde         grade them in a sandbox
  feedback          HTML feedback per student
  export            grades.csv
  report            per-question score distributions (report.md, report.png)
collect, autograde, feedback and report work on one assignment: --assignment NAME, one of
{", ".join(ASSIGNMENTS)} (default {DEFAULT})."""
# setup and export cover every assignment unless told one; the others work on one, the first by default
EVERY = {"setup": "set up only this assignment (default: every one whose notebook is written)",
         "export": "only this assignment's rows (default: every assignment's)"}


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage dump
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser():
    parser = Parser(prog="python -m grader", description="Instructor and TA commands for cl-course.",
                    epilog=STEPS, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser, metavar="COMMAND")

    def command(name, help, description):
        p = sub.add_parser(name, help=help, description=description)
        if name not in ("setup", "release"):
            p.add_argument("--course", default="course", help="the course folder (default %(default)s)")
        if name != "release":  # release publishes every assignment
            p.add_argument("--assignment", choices=list(ASSIGNMENTS), default=None if name in EVERY else DEFAULT,
                           help=EVERY.get(name, "the assignment (default %(default)s)"))
        return p

    p = command("setup", "create the course folder and its gradebook",
                "Create (or refresh) a course folder in nbgrader's layout: nbgrader_config.py, gradebook.db with "
                "every assignment whose notebook is written (nbgrader generate_assignment), their released notebooks "
                "and the student wheel.")
    p.add_argument("course", nargs="?", default="course", help="the course folder (default %(default)s)")

    p = command("release", "write the students' public repository into release/",
                "Write a folder to publish as the students' repository OWNER/NAME: the student notebook of every "
                "assignment whose notebook is written (nbgrader generate_assignment: solutions and hidden tests "
                "stripped), the demo notebook, the student edition of cl_course as a wheel (solutions replaced by "
                "NotImplementedError), a README for students and .gitignore; every badge and install address points "
                "into OWNER/NAME at --branch. No file of it may hold a solution line. Beside it, OUT-instructor/ gets "
                "the full package as a wheel: never publish it.")
    p.add_argument("--repo", default=None, help="the students' public GitHub repository, OWNER/NAME (required)")
    p.add_argument("--branch", default="main", help="its branch (default %(default)s)")
    p.add_argument("--out", default="release", help="output folder (default %(default)s)")
    p.add_argument("--wheel-url", default=None, help="where the notebooks install the wheel from when it is not "
                                                     "beside them (default: its raw-file address in --repo)")

    p = command("collect", "copy downloaded submissions into the course folder",
                "Take students' notebooks from a folder or an LMS zip into submitted/<student>/<assignment>/. "
                "Colab's names ('Copy of X.ipynb', 'X (1).ipynb') are understood; a notebook named as another "
                "assignment's is left for that one; files that cannot be matched are listed.")
    p.add_argument("path", help="a folder or a .zip of downloaded notebooks")
    p.add_argument("--student-pattern", default=None,
                   help="regular expression with a group 'student', searched in each file's path inside PATH "
                        "(default: the first folder, or the file name up to its first '_')")

    p = command("autograde", "grade the collected submissions in a sandbox",
                "Repair each submission against the released notebook, run it in a bubblewrap sandbox (no network, "
                "limits on time, memory and processes) and judge its outputs on hidden fixtures in this process. "
                "Writes the gradebook, autograded/ and grading/<assignment>/<student>.json.")
    p.add_argument("--student", action="append", help="grade only this student (repeatable)")
    p.add_argument("--workers", type=int, default=1,
                   help="submissions graded at once here, or the processes of --cluster local (default %(default)s)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run the submissions on the Dask cluster at ADDRESS (e.g. tcp://head:8786); see the README")
    p.add_argument("--cluster", default=None, choices=["local"],
                   help="start a Dask LocalCluster of --workers processes for this run")
    p.add_argument("--no-sandbox", action="store_true",
                   help="run student code without bubblewrap (UNSAFE: only for code you trust)")
    p.add_argument("--cell-timeout", type=float, default=None,
                   help="CPU seconds a cell may use (default 30; it may take 4 times that in wall-clock time)")
    p.add_argument("--data-root", default=None, help="MNIST folder the notebooks read (default: $CL_COURSE_DATA "
                                                     "or data/)")

    p = command("feedback", "write HTML feedback for each student",
                "nbgrader generate_feedback: feedback/<student>/<assignment>/<notebook>.html with each part's "
                "score and the reason.")
    p.add_argument("--student", action="append", help="only this student (repeatable)")

    p = command("export", "write the grades CSV",
                "nbgrader's CSV export of the gradebook: one row per student and assignment (its column "
                "'assignment') with the total score, ready for an LMS.")
    p.add_argument("--out", default="grades.csv", help="CSV file (default %(default)s)")

    p = command("report", "per-question score distributions",
                "A markdown table and a PNG of each part's scores of one assignment, and the parts lost to crashes, "
                "timeouts or missing cells.")
    p.add_argument("--out", default=None, help="output folder (default report/ASSIGNMENT)")
    return parser


def run(args):
    from .course import Course, CourseError, setup

    if args.command == "setup":
        courses = setup(args.course, [args.assignment] if args.assignment else None)
        print(f"course folder ready: {courses[0].root} (gradebook {courses[0].path('gradebook.db').name}; "
              + ", ".join(f"{c.assignment} released in {c.release_notebook.parent}" for c in courses) + ")")
        for note in [] if args.assignment else not_written("set up"):
            print(f"  note: {note}")
    elif args.command == "release":
        from .release import release
        students, instructor = release(args.out, args.repo, args.branch, args.wheel_url)
        print(f"wrote the students' repository for {args.repo} ({args.branch}) into {args.out}/: "
              + ", ".join(f.name for f in students))
        print(f"wrote the instructor's wheel into {instructor[0].parent}/ (never publish it): {instructor[0].name}; "
              f"on Colab: upload it, then !pip install -q --force-reinstall --no-deps /content/{instructor[0].name}")
        for note in not_written("released"):
            print(f"  note: {note}")
        print(f"publish: cd {args.out} && git init -b {args.branch} && git add -A && git commit -m 'Release' && "
              f"git remote add origin https://github.com/{args.repo}.git && git push -u origin {args.branch}")
    elif args.command == "collect":
        from .collect import DEFAULT_PATTERN, collect, shown
        course = Course(args.course, args.assignment).require()
        result = collect(course, args.path, args.student_pattern or DEFAULT_PATTERN)
        print(f"collected {len(result.students)} submissions of {args.assignment} into "
              f"{Path(args.course) / 'submitted'}")
        for note in result.notes:
            print(f"  note: {shown(note)}")
        for rel, why in result.unmatched:
            print(f"  not collected: {shown(rel)}: {shown(why)}")
    elif args.command == "autograde":
        from cl_course.data import data_root

        from .autograde import autograde
        from .cluster import open_pool
        from .sandbox import Limits, Sandbox
        course = Course(args.course, args.assignment).require()
        limits = Limits(**({"cell_seconds": args.cell_timeout} if args.cell_timeout else {}))
        sandbox = Sandbox(course.student_site, data_root(args.data_root), limits,
                          "unconfined" if args.no_sandbox else "bubblewrap")
        if args.workers < 1:
            raise CourseError("--workers must be at least 1")
        if args.student:
            unknown = sorted(set(args.student) - set(course.students()))
            if unknown:
                raise CourseError(f"no collected submission for {', '.join(unknown)}: run collect first")
        with open_pool(sandbox, args.workers, args.scheduler, args.cluster) as pool:
            graded = autograde(course, sandbox, args.student, args.workers, pool=pool)
        total = sum(p.points for p in course.parts())
        for g in graded:
            print(f"{g.student}: {g.score:g} / {total:g}" + (f"  ({'; '.join(g.notes)})" if g.notes else ""))
    elif args.command == "feedback":
        from .report import feedback
        done, failed = feedback(Course(args.course, args.assignment).require(), args.student)
        for f in done:
            print(f"wrote {f}")
        for student, why in failed:
            print(f"  no feedback for {student}: {why}")
    elif args.command == "export":
        from .report import export
        names = [args.assignment] if args.assignment else None
        print(f"wrote {export(Course(args.course, args.assignment or DEFAULT).require(), Path(args.out), names)}")
    elif args.command == "report":
        from .report import report
        out = Path(args.out or Path("report") / args.assignment)
        print(report(Course(args.course, args.assignment).require(), out), end="")
        print(f"wrote {out / 'report.md'} and {out / 'report.png'}")


def not_written(what):
    """A line for each assignment left out because its notebook is not written yet."""
    return [f"{not_written_yet(name)}: not {what}" for name in ASSIGNMENTS if name not in written()]


def main(argv=None):
    from .cluster import ClusterError
    from .collect import CollectError
    from .course import CourseError
    from .parts import PartsError
    from .sandbox import SandboxError

    args = build_parser().parse_args(argv)
    try:
        run(args)
    except (AssignmentError, ReleaseError, CourseError, CollectError, SandboxError, PartsError, ClusterError) as e:
        sys.exit(f"grader {args.command}: error: {e}")


if __name__ == "__main__":
    main()
