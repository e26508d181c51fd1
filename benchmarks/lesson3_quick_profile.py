"""Lesson 3's quick profile (lesson 2's Split MNIST quick profile, the context-specific family on it): XdG with
SI's lambda chosen on held-out training images, and the bounds the lesson's text relies on, checked on the test
set for seeds 1, 2 and 3.

    python benchmarks/lesson3_quick_profile.py --data-root ../shared/data            # the bounds, seeds 1-3
    python benchmarks/lesson3_quick_profile.py --data-root ../shared/data --sweep    # how xdg-si's lambda was chosen

The bounds (issue 28), on each seed's final accuracies:
  task-IL    every context method's backward transfer within 0.5 of 0, and its final average accuracy within 2
             points of separate networks';
  class-IL   with the task inferred (the context of lowest entropy), every context method at least 20 points below
             its own task-IL accuracy and at least 20 points below experience replay's class-IL accuracy (the turn).

--sweep scores on held-out training images exactly as split_quick_profile.py --sweep does, into the same record
(its Cache, TUNING_SEEDS and grid extension), so tests/test_profiles.py checks profiles.SPLIT_LAMBDAS["quick"]
["task"]["xdg-si"] against it as it checks EWC's and SI's.
"""
import sys
from dataclasses import replace
from pathlib import Path
from statistics import mean

from tqdm.auto import tqdm

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))
sys.path.insert(0, str(ROOT))

import split_quick_profile  # noqa: E402
from split_quick_profile import TUNING_SEEDS, best_of, choose_lambda  # noqa: E402

from cl_course import metrics  # noqa: E402
from cl_course.lessons import lesson3  # noqa: E402
from cl_course.train import load_tasks, run_methods  # noqa: E402

TUNED = "xdg-si"
from cl_course.lessons.lesson3 import BWT_MARGIN, SEPARATE_MARGIN, TURN  # noqa: E402  the bounds the text states


def sweep(cache):
    with tqdm(desc="held-out runs", total=0) as bar:
        scores = choose_lambda(cache, TUNED, "task", bar)
    print(f"\n{TUNED}, task-IL, held-out final average accuracy (%), mean of seeds "
          f"{', '.join(map(str, TUNING_SEEDS))}\n")
    print(" | ".join(f"{lam:g}: {score:.2f}" for lam, score in scores.items()) + f"\n\nChosen: {best_of(scores):g}")


def run(scenario, seed):
    """{method: train.History} of the lesson's runs in `scenario`."""
    config = lesson3.split_config(scenario, seed=seed)
    tasks = load_tasks(config, "cpu")
    methods = lesson3.TASK_METHODS if scenario == "task" else lesson3.INFERRED_METHODS
    return {m: run_methods(replace(config, methods=(m,)), tasks, progress=False)[m]
            for m in tqdm(methods, desc=f"seed {seed}, {scenario}-IL", leave=False)}


def bounds(task, cls):
    """[(statement, holds)] for one seed's task-IL and class-IL {method: History}."""
    final = {s: {m: metrics.average_accuracy(h.accuracy_matrix) for m, h in runs.items()}
             for s, runs in (("task", task), ("class", cls))}
    out = []
    separate = final["task"]["separate"]
    for m in lesson3.CONTEXT_METHODS:
        bwt = metrics.backward_transfer(task[m].accuracy_matrix)
        out.append((f"task-IL {m}: BWT {bwt:+.2f} within {BWT_MARGIN} of 0", abs(bwt) <= BWT_MARGIN))
        if m != "separate":
            out.append((f"task-IL {m}: {final['task'][m]:.2f} within {SEPARATE_MARGIN:g} of separate networks' "
                        f"{separate:.2f}", final["task"][m] >= separate - SEPARATE_MARGIN))
    er = final["class"]["er"]
    for m in lesson3.INFERRED:
        c, t = final["class"][m], final["task"][m]
        out.append((f"class-IL {m} (task inferred): {c:.2f}, at least {TURN:g} below its task-IL {t:.2f} and ER's "
                    f"{er:.2f}", c <= t - TURN and c <= er - TURN))
    return out


def check_bounds(seeds):
    failures, seconds = 0, {}
    for seed in seeds:
        task, cls = run("task", seed), run("class", seed)
        for runs in (task, cls):
            for m, h in runs.items():
                seconds.setdefault(m, []).append(h.wall_time)
        print(f"\nSeed {seed}: final average accuracy (%), BWT, test set\n\n| method | task-IL | BWT | class-IL "
              "(task inferred for the context methods) | task inferred right |\n|---|---|---|---|---|")
        for m in dict.fromkeys((*task, *cls)):
            cells = [f"{metrics.average_accuracy(task[m].accuracy_matrix):.2f}" if m in task else "",
                     f"{metrics.backward_transfer(task[m].accuracy_matrix):+.2f}" if m in task else "",
                     f"{metrics.average_accuracy(cls[m].accuracy_matrix):.2f}" if m in cls else "",
                     f"{mean(cls[m].task_inference.values()):.1f}" if m in cls and cls[m].task_inference else ""]
            print(f"| {m} | " + " | ".join(cells) + " |")
        print()
        for statement, holds in bounds(task, cls):
            failures += not holds
            print(f"- {statement}: {'holds' if holds else 'FAILS'}")
    print("\nSeconds per run (wall, one torch thread), mean over the seeds and both scenarios: "
          + ", ".join(f"{m} {mean(s):.1f}" for m, s in seconds.items()))
    print(f"\n{failures} bound(s) failed" if failures else "\nEvery bound holds")
    return failures


if __name__ == "__main__":
    split_quick_profile.main(sweep, check_bounds, __doc__, f"{TUNED}'s held-out grid and its scores")
