import subprocess
import sys

import pytest

from grader.__main__ import build_parser
from grader.release import ROOT

COMMANDS = ["setup", "release", "collect", "autograde", "feedback", "export", "report", "similarity"]


def grader(*args):
    return subprocess.run([sys.executable, "-m", "grader", *args], capture_output=True, text=True, cwd=ROOT)


def test_help_lists_the_whole_workflow_and_every_command_explains_itself(capsys):
    main_help = build_parser().format_help()
    for command in COMMANDS:
        assert command in main_help
        with pytest.raises(SystemExit):
            build_parser().parse_args([command, "--help"])
        assert len(capsys.readouterr().out.split("\n\n")[1]) > 60  # a description, not just usage


@pytest.mark.parametrize("args, message", [
    (["autograde", "--course", "{tmp}/nowhere"], "is not a set-up course folder: run `python -m grader setup"),
    (["feedback", "--course", "{tmp}/nowhere"], "is not a set-up course folder"),
    (["autograde", "--workers", "many"], "argument --workers: invalid int value"),
    (["grade"], "invalid choice: 'grade'"),
])
def test_mistakes_get_one_line(tmp_path, args, message):
    done = grader(*[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert done.returncode != 0 and message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
