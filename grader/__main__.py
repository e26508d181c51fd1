"""python -m grader: the course's instructor and TA commands, in the order a TA runs them."""
import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

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
  similarity        pairs of students whose own code is alike (a signal for a human, never a grade)
collect, autograde, feedback and report work on one assignment: --assignment NAME, one of
{", ".join(ASSIGNMENTS)} (default {DEFAULT})."""
# setup and export cover every assignment unless told one; the others work on one, the first by default
EVERY = {"setup": "set up only this assignment (default: every one whose notebook is written)",
         "export": "only this assignment's rows (default: every assignment's)"}


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, no usage dump
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> Parser:
    parser = Parser(prog="python -m grader", description="Instructor and TA commands for cl-course.",
                    epilog=STEPS, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser, metavar="COMMAND")

    def command(name: str, help: str, description: str) -> Parser:
        p = sub.add_parser(name, help=help, description=description)
        p.set_defaults(func=globals()[name])  # the function of the same name below runs it
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
                   help="regular expression with a group 'student', searched in each file's path inside PATH, "
                        "or 'moodle' for Moodle's download (default: the first folder, or the file name up to its "
                        "first '_')")

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
    p.add_argument("--workers", type=int, default=2,
                   help="students rendered side by side, a process each (default %(default)s)")

    p = command("export", "write the grades CSV",
                "nbgrader's CSV export of the gradebook: one row per student and assignment (its column "
                "'assignment') with the total score, ready for an LMS.")
    p.add_argument("--out", default="grades.csv", help="CSV file (default %(default)s)")
    p.add_argument("--format", default="nbgrader", choices=["nbgrader", "canvas", "moodle"],
                   help="nbgrader's CSV (default), Canvas's gradebook import or Moodle's grading worksheet")
    p.add_argument("--roster", default=None, help="with canvas: Canvas's gradebook export; with moodle: the "
                                                   "assignment's grading worksheet downloaded from Moodle")
    p.add_argument("--missing", default="empty", choices=["empty", "zero"],
                   help="the cell of a student on the roster who submitted nothing (default %(default)s)")

    p = command("similarity", "pairs of students whose own code is alike (a signal, never a grade)",
                "Compare the students' function and class blanks, pair by pair (winnowing, as MOSS; names and "
                "strings normalised; the notebook's stubs and the reference solutions removed): similarity.csv "
                "with every pair and similarity.html with the pairs above --threshold side by side.")
    p.add_argument("--threshold", type=float, default=0.5, help="share of fingerprints shown in the HTML "
                                                                "(default %(default)s)")
    p.add_argument("--out", default=None, help="output folder (default similarity/ASSIGNMENT)")

    p = command("report", "per-question score distributions",
                "A markdown table and a PNG of each part's scores of one assignment, and the parts lost to crashes, "
                "timeouts or missing cells.")
    p.add_argument("--out", default=None, help="output folder (default report/ASSIGNMENT)")
    return parser


def setup(args: argparse.Namespace) -> None:
    from .course import setup as set_up
    courses = set_up(args.course, [args.assignment] if args.assignment else None)
    print(f"course folder ready: {courses[0].root} (gradebook {courses[0].path('gradebook.db').name}; "
          + ", ".join(f"{c.assignment} released in {c.release_notebook.parent}" for c in courses) + ")")
    for note in [] if args.assignment else not_written("set up"):
        print(f"  note: {note}")


def release(args: argparse.Namespace) -> None:
    from .release import release as write_release
    students, instructor = write_release(args.out, args.repo, args.branch, args.wheel_url)
    print(f"wrote the students' repository for {args.repo} ({args.branch}) into {args.out}/: "
          + ", ".join(f.name for f in students))
    print(f"wrote the instructor's wheel into {instructor[0].parent}/ (never publish it): {instructor[0].name}; "
          f"on Colab: upload it, then !pip install -q --force-reinstall --no-deps /content/{instructor[0].name}")
    for note in not_written("released"):
        print(f"  note: {note}")
    print(f"publish: cd {args.out} && git init -b {args.branch} && git add -A && git commit -m 'Release' && "
          f"git remote add origin https://github.com/{args.repo}.git && git push -u origin {args.branch}")


def collect(args: argparse.Namespace) -> None:
    from .collect import DEFAULT_PATTERN, shown
    from .collect import collect as take
    from .course import Course
    course = Course(args.course, args.assignment).require()
    result = take(course, args.path, args.student_pattern or DEFAULT_PATTERN)
    print(f"collected {len(result.students)} submissions of {args.assignment} into {Path(args.course) / 'submitted'}")
    for note in result.notes:
        print(f"  note: {shown(note)}")
    for rel, why in result.unmatched:
        print(f"  not collected: {shown(rel)}: {shown(why)}")


def autograde(args: argparse.Namespace) -> None:
    from cl_course.data import data_root

    from .autograde import autograde as grade
    from .cluster import open_pool
    from .course import Course, CourseError
    from .sandbox import Limits, Sandbox
    course = Course(args.course, args.assignment).require()
    limits = Limits(**({"cell_seconds": args.cell_timeout} if args.cell_timeout else {}))
    sandbox = Sandbox(course.student_site, data_root(args.data_root), limits,
                      "unconfined" if args.no_sandbox else "bubblewrap")
    if args.workers < 1:
        raise CourseError("--workers must be at least 1")
    unknown = sorted(set(args.student or ()) - set(course.students()))
    if unknown:
        raise CourseError(f"no collected submission for {', '.join(unknown)}: run collect first")
    with open_pool(sandbox, args.workers, args.scheduler, args.cluster) as pool:
        graded = grade(course, sandbox, args.student, args.workers, pool=pool)
    total = sum(p.points for p in course.parts())
    for g in graded:
        print(f"{g.student}: {g.score:g} / {total:g}" + (f"  ({'; '.join(g.notes)})" if g.notes else ""))


def feedback(args: argparse.Namespace) -> None:
    from .course import Course, CourseError
    from .report import feedback as write_feedback
    if args.workers < 1:
        raise CourseError("--workers must be at least 1")
    done, failed = write_feedback(Course(args.course, args.assignment).require(), args.student, workers=args.workers)
    for f in done:
        print(f"wrote {f}")
    for student, why in failed:
        print(f"  no feedback for {student}: {why}")


def export(args: argparse.Namespace) -> None:
    from .course import Course, CourseError
    from .report import export as write_csv
    from .report import export_for_lms
    names = [args.assignment] if args.assignment else None
    course = Course(args.course, args.assignment or DEFAULT).require()
    if args.format == "nbgrader":
        print(f"wrote {write_csv(course, Path(args.out), names)}")
        return
    if args.roster is None:
        raise CourseError(f"--format {args.format} needs --roster: the file the LMS exports (see --help)")
    if args.format == "moodle" and not args.assignment:
        raise CourseError("a Moodle grading worksheet is one assignment's: pass --assignment")
    done = export_for_lms(course, Path(args.out), args.format, Path(args.roster), names, args.missing)
    print(f"wrote {done.path}: {done.rows} students on the roster, {done.graded} of them graded")
    if done.not_on_roster:
        print(f"  not on the roster, so not exported (add them in the LMS, then export again): "
              f"{', '.join(done.not_on_roster)}")


def similarity(args: argparse.Namespace) -> None:
    from .course import Course
    from .similarity import similarity as compare
    out = Path(args.out or Path("similarity") / args.assignment)
    ranked, notes = compare(Course(args.course, args.assignment).require(), out, args.threshold)
    shown = sum(p.score >= args.threshold for p in ranked)
    print(f"wrote {out / 'similarity.csv'} ({len(ranked)} pairs) and {out / 'similarity.html'} ({shown} at or above "
          f"{args.threshold:.0%}); a signal for a human, never a grade")
    for p in ranked[:5]:
        print(f"  {p.a} / {p.b}: {p.score:.0%}")
    for note in notes:
        print(f"  note: {note}")


def report(args: argparse.Namespace) -> None:
    from .course import Course
    from .report import report as write_report
    out = Path(args.out or Path("report") / args.assignment)
    print(write_report(Course(args.course, args.assignment).require(), out), end="")
    print(f"wrote {out / 'report.md'} and {out / 'report.png'}")


def not_written(what: str) -> list[str]:
    """A line for each assignment left out because its notebook is not written yet."""
    return [f"{not_written_yet(name)}: not {what}" for name in ASSIGNMENTS if name not in written()]


def main(argv: Sequence[str] | None = None) -> None:
    from .cluster import ClusterError
    from .collect import CollectError
    from .lms import RosterError
    from .course import CourseError
    from .parts import PartsError
    from .sandbox import SandboxError

    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (AssignmentError, ReleaseError, CourseError, CollectError, SandboxError, PartsError, ClusterError,
            RosterError) as e:
        sys.exit(f"grader {args.command}: error: {e}")


if __name__ == "__main__":
    main()
