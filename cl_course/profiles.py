"""Run profiles of the notebooks, read in one place.

  quick    the default everywhere: the lesson in 1 to 2 minutes on an idle 2-core CPU, with answers that loop
           over samples too (importances from 500 of each task's 3,000 training images)
  full     HW14's size (5 tasks x 10 epochs on all the data, Adam 1e-4): meant for a GPU
  grading  tiny; the autograder sets it through CL_COURSE_PROFILE

The notebook trains the students' own functions, which compute the papers' per-sample statistics
(the empirical Fisher, per-sample MAS, independent SCP slices) on each finished task's training
data: the `paper` protocol. Its importances are far larger than HW14's batch-mean ones, so its
lambdas are its own. A profile only sizes the training runs; self-checks use their own fixture
(selfcheck.py), so changing the profile never changes what they verify.
"""
import copy
import os
from dataclasses import replace

from .config import RunConfig

PROFILE_VARIABLE = "CL_COURSE_PROFILE"
DEFAULT_PROFILE = "quick"

# The quick profile's lambdas: the best average accuracy on a validation split of the training
# images (not the test set) over the grids of `benchmarks/quick_profile.py --sweep` (30 to 3,000; MAS 0.03
# to 3), recorded in benchmarks/README.md.
QUICK_LAMBDAS = {"ewc": 1000.0, "mas": 0.1, "si": 300.0, "rwalk": 1000.0, "scp": 300.0}

# The full profile's lambdas, those of the shipped paper-protocol run: the best average accuracy on
# held-out training images of the first 3 tasks at the full profile's settings
# (benchmarks/full_paper_run.py; the grid and scores in benchmarks/results/paper_cpu/lambda_tuning.json).
FULL_LAMBDAS = {"ewc": 1000.0, "mas": 0.03, "si": 100.0, "rwalk": 100.0, "scp": 30.0}

PAPER = dict(protocol="paper", fisher_labels="empirical",  # the statistics the students write
             importance_batch_size=256)  # per-sample gradients of 256 images: 1.5 GB, fits a 16 GB GPU

PROFILES = {
    # 24 steps per epoch: Adam at HW14's 1e-4 learns task 1 to only 84% and forgets little; at 1e-3 it
    # learns it to about 90% and forgets it clearly, which is the lesson
    # importances from 500 of each task's 3,000 images: the runs end within 0.3 points of those with all 3,000
    # (benchmarks/README.md), and a student's per-sample loop takes a sixth of the time
    "quick": PAPER | dict(tasks=5, epochs=2, subset=3000, test_subset=500, lr=1e-3, lambdas=QUICK_LAMBDAS,
                          importance_subset=500),
    # HW14's sizes and lr, with lambdas of its own (those of the shipped paper-protocol run)
    "full": PAPER | dict(tasks=5, epochs=10, subset=None, test_subset=None, lr=1e-4, lambdas=FULL_LAMBDAS),
    "grading": PAPER | dict(tasks=2, epochs=1, subset=128, test_subset=32, lr=1e-3, lambdas=QUICK_LAMBDAS,
                            scp_slices=10),
}

# Lesson 2: Split MNIST in van de Ven & Tolias's protocol (table.protocol: MLP 2x400, Adam 1e-3, batches of 128,
# the exact Fisher), shortened to `iterations` per task. Per-iteration costs on a 2-core CPU (benchmarks/README.md):
# baseline 4.6 ms, ER 6.7, A-GEM 7.5, DGR 24.5 (with van de Ven & Tolias's VAE, as the full profile runs it).
SPLIT = dict(benchmark="split-mnist", protocol="paper", tasks=5, epochs=1, batch_size=128, lr=1e-3,
             fisher_labels="exact", importance_batch_size=256, eval_batch_size=4096)
# The regularisers' lambdas per profile and scenario. full: those `python -m cl_course table` chose on held-out
# training images (benchmarks/results/split_mnist/summary.md; EWC there is online-ewc with gamma 1, the paper
# protocol's EWC). quick: its own, the best on held-out training images at its size (`benchmarks/
# split_quick_profile.py --sweep`, recorded in benchmarks/README.md): the full run's suit 2,000 batches per task.
# Lesson 3's XdG with SI (task-IL): quick, chosen the same way (`benchmarks/lesson3_quick_profile.py --sweep`); full,
# the one `python -m cl_course context-table` chose on held-out images (benchmarks/results/context/summary.md)
SPLIT_LAMBDAS = {"quick": {"task": {"ewc": 1e4, "si": 1e3, "xdg-si": 1e6}, "domain": {"ewc": 1e6, "si": 1e4},
                           "class": {"ewc": 1e7, "si": 1e5}},
                 "full": {"task": {"ewc": 1e10, "si": 10.0, "xdg-si": 1e5}, "domain": {"ewc": 1e8, "si": 1e7},
                          "class": {"ewc": 1e6, "si": 1e3}}}
SPLIT_LAMBDAS["grading"] = SPLIT_LAMBDAS["quick"]
# DGR's generator in the quick profile: van de Ven & Tolias's VAE (400-400, 100 latent units) trained only on the
# classifier's 40 batches per task draws samples that the previous classifier labels nearly all alike; a smaller VAE
# at a higher learning rate, given batches of its own at each task's end, replays every old class, in less VAE time
# (an estimated 3.6 CPU seconds a run against 6.3; chosen on held-out training images with the lambdas)
QUICK_GENERATOR = dict(generator_iterations=100, generator_lr=1e-2, generator_hidden=(100,), generator_latent=10)
SPLIT_PROFILES = {
    # 40 batches per task already separate the families in class-IL (the baseline ~20%, replay ~80-90%)
    "quick": SPLIT | QUICK_GENERATOR | dict(iterations=40, subset=2000, test_subset=500),
    "full": SPLIT | dict(iterations=2000, subset=None, test_subset=None),  # van de Ven & Tolias's
    "grading": SPLIT | dict(iterations=5, subset=128, test_subset=32, tasks=2),
}

# What each profile costs, as the notebook's first cell prints it (measured: benchmarks/README.md)
COSTS = {
    "quick": "5 tasks x 2 epochs on 3,000 training images per task, importances from 500 of them; the whole "
             "notebook took 67 s on an idle 2-core CPU, 89 s with functions that loop over samples (longer when "
             "the machine is busy)",
    "full": "HW14's 5 tasks x 10 epochs on all 60,000 training images, about 100 times the quick profile's "
            "training; HW14's own code took 17-18 minutes per method on a Colab GPU, this notebook was not timed there",
    "grading": "2 tasks x 1 epoch on 128 images, for the autograder",
}


SPLIT_COSTS = {  # lesson 2's
    "quick": "5 tasks x 40 batches of 128 per task on 2,000 training images, 22 runs over the three scenarios and 27 "
             "short ones at three memory budgets; the whole notebook took 130 s on an idle 2-core CPU",
    "full": "van de Ven & Tolias's 2,000 batches per task on all training images, 50 times the quick profile's "
            "training; meant for a GPU",
    "grading": "2 tasks x 5 batches, for the autograder",
}


CONTEXT_COSTS = {  # lesson 3's, on lesson 2's Split MNIST sizes and lesson 1's Permuted MNIST ones (for IMM)
    "quick": "lesson 2's Split MNIST size (5 tasks x 40 batches of 128 per task on 2,000 training images): 8 runs told "
             "the task, 5 inferring it, PackNet's capacity run, 3 IMM runs on lesson 1's quick Permuted MNIST and the "
             "cost table's one-batch runs; the whole notebook took 70 s on an idle 2-core CPU",
    "full": SPLIT_COSTS["full"],
    "grading": "2 tasks x 5 batches, for the autograder",
}


def profile_name(name=None):
    """$CL_COURSE_PROFILE (the autograder's), else `name` (the notebook's PROFILE line), else quick."""
    chosen = os.environ.get(PROFILE_VARIABLE) or name or DEFAULT_PROFILE
    if chosen not in PROFILES:
        where = f"${PROFILE_VARIABLE}" if os.environ.get(PROFILE_VARIABLE) else "PROFILE"
        raise ValueError(f"unknown run profile {chosen!r} in {where}; choose {', '.join(PROFILES)}")
    return chosen


def profile_config(name=None, **overrides):
    """The RunConfig of a profile (HW14's defaults, resized), with `overrides` on top."""
    return replace(RunConfig(**copy.deepcopy(PROFILES[profile_name(name)])), **overrides).check()


def split_config(scenario, name=None, **overrides):
    """Lesson 2's RunConfig: Split MNIST in `scenario` at the profile's size, with its lambdas."""
    profile = profile_name(name)
    settings = copy.deepcopy(SPLIT_PROFILES[profile]) | {"scenario": scenario}
    return replace(RunConfig(**settings, lambdas=dict(SPLIT_LAMBDAS[profile].get(scenario, {}))), **overrides).check()
