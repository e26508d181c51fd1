"""python -m grader: the course's instructor and TA commands."""
import argparse
import sys

from .release import ReleaseError, release


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage dump
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser():
    parser = Parser(prog="python -m grader", description="Instructor and TA commands for cl-course.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    rel = sub.add_parser("release", help="build the student notebooks and the student wheel into release/",
                         description="Strip solutions and hidden tests from the notebooks (nbgrader generate_assignment), "
                                     "build the student edition of cl_course (solutions replaced by NotImplementedError), "
                                     "and check that no solution line reached the release.")
    rel.add_argument("--out", default="release", help="output folder (default %(default)s)")
    rel.add_argument("--wheel-url", default=None,
                     help="where students' notebooks install the wheel from when it is not beside them "
                          "(default: the course's GitHub release)")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.command == "release":
        try:
            files = release(args.out, args.wheel_url)
        except ReleaseError as e:
            sys.exit(f"grader release: error: {e}")
        for f in files:
            print(f"wrote {f}")


if __name__ == "__main__":
    main()
