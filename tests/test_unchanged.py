"""The six HW14 methods and joint training, in both protocols, give the same runs as before the hooks were
extended for the replay families (issue 13): a small Permuted MNIST run of the code of commit 8441508 (taken
from git) and of today's code, each in a fresh process with one thread, compared exactly. Likewise Split
MNIST's methods without a memory against commit 5ccaa03, before the replay memory became a fixed budget
(issue 25): the replay methods (ER, A-GEM, GEM, iCaRL) changed by design, LwF gained a flag whose default
must leave it as it was.

Both run here, on the same machine, because the runs themselves are not portable: torch picks its kernels
(AVX2, AVX-512, scalar) by CPU, and a different order of float sums moves a test sample or two. Recorded
matrices from another machine would fail here for that reason alone.
"""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from cl_course.config import HW14_METHODS

REPO = Path(__file__).resolve().parents[1]
BEFORE_THE_HOOKS = "8441508"
BEFORE_THE_BUDGET = "5ccaa03"
SMALL = dict(tasks=3, epochs=1, subset=400, test_subset=200, batch_size=64, lr=1e-3, importance_batch_size=100,
             scp_slices=10, eval_batch_size=1000,
             lambdas={"ewc": 1000.0, "mas": 1.0, "si": 10.0, "rwalk": 100.0, "scp": 100.0})
CASES = {
    "hw14": dict(protocol="hw14"),
    "paper-exact": dict(protocol="paper", fisher_labels="exact"),
    "paper-empirical-multihead": dict(protocol="paper", fisher_labels="empirical", multi_head=True,
                                      methods=HW14_METHODS[:-1]),
}
SPLIT_CASES = {
    f"split-{scenario}": dict(benchmark="split-mnist", scenario=scenario, protocol="paper", fisher_labels="exact",
                              methods=("baseline", "online-ewc", "si", "lwf", "joint"),
                              lambdas={"online-ewc": 1e6, "si": 1e5})
    for scenario in ("task", "class")}
COMMITS = {BEFORE_THE_HOOKS: CASES, BEFORE_THE_BUDGET: SPLIT_CASES}
# Runs every case with the cl_course found first on sys.path; prints {case: {method: accuracy matrix}}.
# The commit before the hooks said multi_head=True for what is now scenario="task".
RUN = """
import dataclasses, json, sys
import torch
torch.set_num_threads(1)
from cl_course.config import RunConfig
from cl_course.train import run_methods
small, cases, data_root = json.loads(sys.argv[1])
out = {}
for case, options in cases.items():
    if "scenario" in {f.name for f in dataclasses.fields(RunConfig)} and options.pop("multi_head", False):
        options["scenario"] = "task"
    options = {k: tuple(v) if isinstance(v, list) else v for k, v in options.items()}
    runs = run_methods(RunConfig(**(small | options), data_root=data_root), progress=False)
    out[case] = {m: h.accuracy_matrix for m, h in runs.items()}
print(json.dumps(out))
"""


def accuracy_matrices(source, data_root, cases):
    """Every case's runs with the cl_course package in `source`, in a fresh process."""
    done = subprocess.run([sys.executable, "-c", RUN, json.dumps([SMALL, cases, str(Path(data_root).resolve())])],
                          capture_output=True, text=True, cwd=source, env={"PYTHONPATH": str(source),
                                                                           "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.splitlines()[-1])


@pytest.fixture(scope="module")
def before(tmp_path_factory, data_root):
    """{case: runs} of each commit's own cases, with that commit's code."""
    runs = {}
    for commit, cases in COMMITS.items():
        tree = tmp_path_factory.mktemp(commit)
        archive = subprocess.run(["git", "-C", str(REPO), "archive", commit, "cl_course"], capture_output=True)
        if archive.returncode != 0:
            pytest.fail(f"commit {commit} is not in this clone's history; fetch it (git fetch --unshallow)")
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
        runs |= accuracy_matrices(tree, data_root, cases)
    return runs


@pytest.fixture(scope="module")
def today(data_root):
    return accuracy_matrices(REPO, data_root, CASES | SPLIT_CASES)


@pytest.mark.parametrize("case", CASES)
def test_hw14_methods_run_as_before_the_hooks(case, before, today):
    assert set(today[case]) == set(CASES[case].get("methods", HW14_METHODS))
    assert today[case] == before[case]


@pytest.mark.parametrize("case", SPLIT_CASES)
def test_split_mnist_methods_without_a_memory_run_as_before_the_budget(case, before, today):
    assert set(today[case]) == set(SPLIT_CASES[case]["methods"])
    assert today[case] == before[case]


def test_the_comparison_can_tell_methods_apart(today):
    """The small run is long enough that the methods end differently, so a changed method would show."""
    for case, runs in today.items():
        finals = {m: tuple(matrix[-1]) for m, matrix in runs.items()}
        assert len(set(finals.values())) == len(finals), (case, finals)
