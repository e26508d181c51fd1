"""The Split MNIST runs the instructor's demo shows before any training, one file per scenario
(cl_course/precomputed/split-mnist-SCENARIO.json, the results format `cl-course run` writes).

    CL_COURSE_DATA=../shared/data .venv/bin/python benchmarks/demo_runs.py [--iterations 300] [--methods er,agem]

van de Ven & Tolias's protocol (table.protocol: MLP 2x400, Adam 0.001, batch 128, 1 epoch per task), but
300 iterations per task by default instead of 2,000: on the 2-core machine the shipped runs were made on,
an iteration took about 25 ms on one thread, so the protocol's 10,000 per method would have taken the
whole 20 minutes allowed for all of them. The regularisers' lambdas are those `cl-course table` chose on
held-out training images (benchmarks/results/split_mnist/results.json).
"""
import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from cl_course.report import results_dict  # noqa: E402
from cl_course.table import protocol  # noqa: E402
from cl_course.train import load_tasks, run_methods  # noqa: E402

TUNED = ROOT / "benchmarks" / "results" / "split_mnist" / "results.json"
# Class-IL first: its forgetting and replay's rescue are what the demo must show if time runs out.
# One regulariser family each (EWC, SI), distillation, replay (and, in class-IL, A-GEM and iCaRL), joint; the
# context-specific family where the task is given (task-IL), and IMM's merges where one network answers (domain-IL).
SHIPPED = {"class": ("baseline", "ewc", "si", "lwf", "er", "agem", "icarl", "joint"),
           "domain": ("baseline", "ewc", "si", "lwf", "er", "imm-mean", "imm-mode", "joint"),
           "task": ("baseline", "ewc", "si", "lwf", "er", "separate", "xdg", "packnet", "hat", "progressive", "joint")}


def tuned_lambdas(scenario):
    """The table's lambdas for `scenario`. It tunes online EWC, which under the paper protocol (summed
    Fishers, one anchor, gamma 1) is EWC itself, so EWC gets the same."""
    chosen = json.loads(TUNED.read_text())["lambdas"]  # "online-ewc|class": 1e6, ...
    lambdas = {key.split("|")[0]: value for key, value in chosen.items() if key.split("|")[1] == scenario}
    return lambdas | {"ewc": lambdas["online-ewc"]}


def ship(scenario, methods, iterations):
    """(the results of `methods` in `scenario`, in the format `cl-course run` writes; CPU seconds)."""
    config = protocol(methods=methods, scenario=scenario, iterations=iterations, lambdas=tuned_lambdas(scenario))
    tasks = load_tasks(config, "cpu")
    start = time.process_time()
    results = run_methods(config, tasks, progress=False)
    cpu = time.process_time() - start
    data = results_dict(config, results, "cpu", len(tasks[0].x_train))
    data["environment"] |= {"training_samples_each_task": [len(t.x_train) for t in tasks],
                            "threads": torch.get_num_threads(), "cpu_time_s": round(cpu)}
    data["about"] = (f"Split MNIST, {scenario}-incremental: van de Ven & Tolias's protocol with {iterations:,} "
                     f"iterations of 128 per task (theirs: 2,000); made by benchmarks/demo_runs.py")
    return data, cpu


def rerun(shipped, new):
    """`shipped` (a scenario's file) with the runs of `new` in place of its own, in the file's order; the config is
    the new runs' (it sets what they use, e.g. the memory budget), listing every method of the file."""
    rerun_methods = list(new["methods"])
    data = dict(shipped, methods={m: new["methods"].get(m, r) for m, r in shipped["methods"].items()})
    data["config"] = dict(new["config"], methods=list(shipped["methods"]))
    data["about"] = shipped["about"] + (f"; {', '.join(rerun_methods)} rerun on their own "
                                        f"({new['environment']['cpu_time_s']} s CPU) with the config above")
    return data


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=300, help="per task (default %(default)s)")
    parser.add_argument("--scenarios", default=",".join(SHIPPED), help="comma-separated (default %(default)s)")
    parser.add_argument("--methods", default=None,
                        help="comma-separated: rerun only these (those of them a scenario ships), keeping its file's "
                             "other runs (default: every shipped method)")
    parser.add_argument("--out", type=Path, default=ROOT / "cl_course" / "precomputed")
    args = parser.parse_args()
    torch.set_num_threads(1)  # the budget is CPU time on one thread
    total = 0.0
    for scenario in args.scenarios.split(","):
        chosen = [m for m in SHIPPED[scenario] if args.methods is None or m in args.methods.split(",")]
        if not chosen:
            continue
        data, cpu = ship(scenario, tuple(chosen), args.iterations)
        path = args.out / f"split-mnist-{scenario}.json"
        if args.methods is not None:
            data = rerun(json.loads(path.read_text()), data)
        path.write_text(json.dumps(data, indent=1))
        total += cpu
        finals = ", ".join(f"{m} {data['methods'][m]['metrics']['average_accuracy']:.2f}" for m in chosen)
        print(f"{scenario}-IL: {finals} ({cpu:.0f} s CPU) -> {path}", flush=True)
    print(f"{total:.0f} s CPU in all")


if __name__ == "__main__":
    main()
