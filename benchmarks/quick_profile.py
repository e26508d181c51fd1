"""The quick profile's teaching targets, measured on this machine. Targets: the whole course notebook runs
in at most 3 minutes with a student's plain per-sample-loop answers (benchmarks/loop_answers.py); the
baseline forgets (task 1 loses at least 10 points by the end); each of EWC, MAS, SI, RWalk and SCP ends at
least 3 points above the baseline in average accuracy.

    python benchmarks/quick_profile.py --data-root ../shared/data                  # with the notebook's solutions
    python benchmarks/quick_profile.py --data-root ../shared/data --answers loop   # with plain-loop answers
    python benchmarks/quick_profile.py --data-root ../shared/data --sweep          # how the lambdas were chosen

The methods train with the notebook's own solution cells, as the notebook does (--answers loop: with the
loop answers in their place, in the notebook and in the methods' runs). --sweep trains each method over a
grid of lambdas, scoring each on a validation split of the training images (the 1,000 images after the
profile's 3,000 in the same seeded order; no test image), and prints the average accuracy per lambda:
cl_course/profiles.py's QUICK_LAMBDAS are the best of each row.
"""
import argparse
import inspect
import json
import os
import resource
import sys
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import nbformat
import torch
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cl_course.lessons import notebook as course  # noqa: E402
from cl_course.teaching.blanks import blanks_of  # noqa: E402
from cl_course.config import HW14_METHODS  # noqa: E402
from cl_course.data import Task, load_mnist, normalise, pixel_permutations, subset_indices  # noqa: E402
from cl_course.metrics import average_accuracy  # noqa: E402
from cl_course.profiles import profile_config  # noqa: E402

import loop_answers  # noqa: E402  (beside this script)

NOTEBOOK = ROOT / "notebooks" / "hw14_lifelong_learning.ipynb"
GRID = {"ewc": [30, 100, 300, 1000, 3000], "mas": [0.03, 0.1, 0.3, 1, 3], "si": [30, 100, 300, 1000, 3000],
        "rwalk": [30, 100, 300, 1000, 3000], "scp": [30, 100, 300, 1000, 3000]}


def notebook_solutions():
    """The notebook's solution cells, run in one namespace."""
    namespace = {"torch": torch, "F": torch.nn.functional}
    for cell in json.loads(NOTEBOOK.read_text())["cells"]:
        if cell["metadata"].get("nbgrader", {}).get("solution") and "def " in "".join(cell["source"]):
            exec("".join(cell["source"]), namespace)
    return namespace


def answers(kind):
    """{blank name: function}: the notebook's solution cells, or the plain-loop answers."""
    if kind == "loop":
        return {n: f for n, f in vars(loop_answers).items() if inspect.isfunction(f) and f.__module__ == "loop_answers"}
    return notebook_solutions()


def train_all(config, tasks, methods=HW14_METHODS, kind="notebook"):
    solutions = answers(kind)
    return {m: course.train(m, config, tasks, **{n: solutions[n] for n in blanks_of(m)}) for m in methods}


def validation_tasks(config):
    """The profile's Permuted MNIST tasks with 1,000 held-out training images in place of the test set."""
    (x, y), _ = load_mnist(config.data_root)
    order = subset_indices(len(x), config.subset + 1000, config.seed)  # the first `subset` are the profile's
    train, held_out = order[:config.subset], order[config.subset:]
    tasks = []
    for t, perm in enumerate(pixel_permutations(config.tasks, config.permutation_seed)):
        perm = torch.as_tensor(perm)
        tasks.append(Task(f"task {t + 1}", normalise(x[train])[:, perm], y[train], normalise(x[held_out])[:, perm],
                          y[held_out], head=t))
    return tasks


def sweep(config, kind):
    tasks = validation_tasks(config)
    baseline = average_accuracy(train_all(config, tasks, ("baseline",), kind)["baseline"].accuracy_matrix)
    print(f"Validation split (1,000 held-out training images per task); baseline {baseline:.2f}\n")
    print("| method | " + " | ".join(f"lambda {i + 1}" for i in range(5)) + " | best |")
    print("|---|" + "---|" * 6)
    for method, lambdas in GRID.items():
        scores = {}
        for lam in lambdas:
            c = replace(config, lambdas=config.lambdas | {method: lam})
            scores[lam] = average_accuracy(train_all(c, tasks, (method,), kind)[method].accuracy_matrix)
        best = max(scores, key=scores.get)
        print(f"| {method} | " + " | ".join(f"{lam:g}: {s:.2f}" for lam, s in scores.items()) + f" | {best:g} |")


def cell_seconds(cell):
    """How long an executed cell took, from the timestamps nbclient records."""
    stamps = cell.metadata.get("execution", {})
    if "iopub.execute_input" not in stamps or "shell.execute_reply" not in stamps:
        return 0.0
    start, end = (datetime.fromisoformat(stamps[k].replace("Z", "+00:00"))
                  for k in ("iopub.execute_input", "shell.execute_reply"))
    return (end - start).total_seconds()


def notebook_seconds(kind):
    """The whole source notebook in the quick profile, timed with nbclient: with its own solutions, or with
    each solution cell replaced by the loop answer of the same name."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    if kind == "loop":
        loops = answers("loop")
        for cell in nb.cells:
            name = cell.metadata.get("nbgrader", {}).get("grade_id")
            if cell.metadata.get("nbgrader", {}).get("solution") and name in loops:
                cell.source = inspect.getsource(loops[name])
    start, used = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    NotebookClient(nb, timeout=1800, kernel_name="python3", allow_errors=True).execute()
    seconds, spent = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
    errors = [o.ename for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
    print("The slowest cells (s):")
    for took, first in sorted(((cell_seconds(c), c.source.splitlines()[0]) for c in nb.cells
                               if c.cell_type == "code"), reverse=True)[:8]:
        print(f"  {took:6.1f}  {first[:90]}")
    # the kernel's CPU time (it has exited and been waited for)
    return seconds, spent.ru_utime + spent.ru_stime - used.ru_utime - used.ru_stime


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--sweep", action="store_true", help="the lambda grid on a validation split")
    parser.add_argument("--answers", choices=("notebook", "loop"), default="notebook",
                        help="the notebook's vectorised solutions, or plain per-sample loops (loop_answers.py)")
    args = parser.parse_args()
    if args.data_root:
        os.environ["CL_COURSE_DATA"] = str(Path(args.data_root).resolve())
    os.environ["CL_COURSE_PROFILE"] = "quick"
    config = profile_config("quick")
    if args.sweep:
        return sweep(config, args.answers)
    seconds, cpu = notebook_seconds(args.answers)
    results = train_all(config, course.start("quick")[1], kind=args.answers)
    R = results["baseline"].accuracy_matrix
    baseline = average_accuracy(R)
    print(f"\nWhole notebook, quick profile, {args.answers} answers: {seconds:.0f} s (target at most 180 s with "
          f"loop answers, quiet); the kernel's CPU time {cpu:.0f} s; load average at the end "
          f"{os.getloadavg()[0]:.1f} (on a busy machine both times grow: time it quiet)")
    print(f"Baseline: task 1 from {R[0][0]:.1f} after its training to {R[-1][0]:.1f} at the end "
          f"({R[0][0] - R[-1][0]:.1f} points lost; target at least 10); average accuracy {baseline:.2f}\n")
    print("| method | lambda | average accuracy (%) | above the baseline (target at least 3) | training s |")
    print("|---|---|---|---|---|")
    for method, history in results.items():
        acc = average_accuracy(history.accuracy_matrix)
        print(f"| {method} | {config.lam(method):g} | {acc:.2f} | {acc - baseline:+.2f} | {history.wall_time:.1f} |")


if __name__ == "__main__":
    main()
