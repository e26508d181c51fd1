"""The test tiers: `make test` runs everything (what CI runs); `make test-fast` leaves out what
SLOW marks slow, so that the unit tests run in about a minute. Both run two pytest-xdist workers side
by side, except for what ALONE marks: tests whose limits are clocks or CPU shares, which `make test`
runs afterwards with the machine to themselves."""
import os
from pathlib import Path

import pytest
import torch

# Paths enter here: a relative data root (CL_COURSE_DATA=../shared/data, as the README writes it)
# must mean the same folder in every subprocess, kernel and sandbox the tests start elsewhere.
if os.environ.get("CL_COURSE_DATA"):
    os.environ["CL_COURSE_DATA"] = str(Path(os.environ["CL_COURSE_DATA"]).expanduser().resolve())
# `make test-fast` runs two pytest-xdist workers side by side: one thread each, here and in what they start
# (two threads per process on a busy 2-core machine run several times slower than one)
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)

SLOW = {
    "tests/test_notebooks.py": "runs the notebooks in kernels and builds release wheels",
    "tests/test_browser.py": "JupyterLab in Chromium",
    "tests/test_browser_classic.py": "the classic notebook in Chromium",
    "tests/test_colab.py": "the released notebooks in the Colab-like environment",
    "grader/tests/test_corpus.py": "grades the whole corpus with the README's commands (about 5 minutes)",
    "grader/tests/test_cluster.py": "a Dask LocalCluster grading part of the corpus",
    "grader/tests/test_sandbox.py": "bubblewrap runs with limits that must be reached",
    "grader/tests/test_harness.py": "a Python process with torch per test",
    "grader/tests/test_autograde.py": "sets up a course and grades four submissions, twice",
    "grader/tests/test_assignments.py": "sets up a course of two assignments and grades a small one (1 minute)",
    "tests/test_cli.py::test_short_run_baseline_forgets_and_ewc_forgets_less": "trains two methods (20 s)",
    "tests/test_demo.py::test_run_trains_redraws_and_caches": "trains in the widget (20 s)",
    "tests/test_demo.py::test_split_mnist_trains_live_what_is_not_shipped": "trains Split MNIST in the widget (20 s)",
    "tests/test_demo.py::test_each_split_mnist_scenario_offers_its_methods_and_shows_its_shipped_runs_without_data_or_"
    "training": "draws every scenario's shipped runs (30 s)",
    "tests/test_demo.py::test_the_student_edition_looks_up_split_mnist_and_says_what_is_shipped": "draws (15 s)",
    "tests/test_demo.py::test_bad_split_mnist_settings_are_one_line_messages_in_the_page": "draws (15 s)",
    "tests/test_cli.py::test_split_mnist_class_il_the_baseline_forgets_and_replay_remembers": "two short runs (15 s)",
    "tests/test_unchanged.py": "20 small Permuted MNIST runs against recorded accuracies (20 s)",
    "tests/test_context_table.py::test_cells_give_the_same_runs_on_a_local_dask_cluster_as_on_the_process_pool":
        "a Dask LocalCluster and a process pool (20 s)",
    "tests/test_context_table.py::test_a_short_table_end_to_end": "24 short runs (40 s)",
    "tests/test_replay.py::test_the_student_wheel_stubs_gem_and_holds_none_of_its_lines": "builds the student wheel "
                                                                                          "(10-20 s)",
}


ALONE = {
    "grader/tests/test_corpus.py": "wall-clock limits of the sandbox, and a bound on each submission's time",
    "grader/tests/test_cluster.py": "the same limits on a Dask cluster; kills a worker while it runs",
    "grader/tests/test_sandbox.py": "CPU shares and wall-clock limits that must be reached, and only they",
    "tests/test_browser.py": "Playwright waits on a page with timeouts",
    "tests/test_browser_classic.py": "Playwright waits on a page with timeouts",
}


def pytest_collection_modifyitems(config, items):
    root = Path(str(config.rootpath))
    for item in items:
        path = Path(str(item.path)).relative_to(root).as_posix()
        for table, marker in ((SLOW, pytest.mark.slow), (ALONE, pytest.mark.alone)):
            if path in table or f"{path}::{item.originalname}" in table:
                item.add_marker(marker)
