import json
import os
import shutil

import pytest

from grader.assignments import notebook_of
from grader.release import generate_notebooks

from .make_corpus import solution_sources


@pytest.fixture(scope="session")
def released(tmp_path_factory):
    """hw14's released notebook (a dict, sources as strings), generated once."""
    tmp = tmp_path_factory.mktemp("release")
    generate_notebooks(tmp / "course", tmp, names=["hw14"])
    nb = json.loads((tmp / notebook_of("hw14")).read_text())
    for c in nb["cells"]:
        c["source"] = "".join(c["source"])
    return nb


@pytest.fixture
def answered(released):
    """A copy of the released notebook with every answer filled in."""
    nb = json.loads(json.dumps(released))
    solutions = solution_sources("hw14")
    for c in nb["cells"]:
        gid = c["metadata"].get("nbgrader", {}).get("grade_id")
        if gid in solutions:
            c["source"] = solutions[gid]
    return nb


@pytest.fixture(scope="session")
def bwrap():
    if shutil.which("bwrap") is None:
        message = "bubblewrap is not installed (apt-get install bubblewrap); .ci/run installs it"
        if os.environ.get("CL_COURSE_REQUIRE_DATA"):  # CI: the sandbox tests must run
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="session")
def student_site(tmp_path_factory):
    """The student edition of cl_course, unpacked as the sandbox imports it."""
    import zipfile

    from grader.release import build_wheel
    tmp = tmp_path_factory.mktemp("student")
    wheel = build_wheel(tmp, tmp)
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(tmp / "site")
    return tmp / "site"


def run_job(sandbox, cells, seeds=()):
    """Run harness cells ({"kind": "code", "source"} or probes) once, indexed in order; (Outcome, {index: record})."""
    outcome = sandbox.run({"cells": [dict(c, index=i) for i, c in enumerate(cells)], "seeds": list(seeds)})
    return outcome, outcome.done


def text(entry):
    return "".join(o.get("text", "") for o in entry["outputs"] if o["output_type"] == "stream")
