"""What a run leaves in --out: results.json, the figures, and summary.md."""
import dataclasses
import json
import platform
from importlib.resources import files
from pathlib import Path

import torch

from . import metrics, plots
from .config import HW14_TA_RESULTS
from .data import BENCHMARKS, SCENARIOS
from .train import History

# Full runs (5 tasks x 10 epochs, all 24,680 training images of the offline copy, CPU) that ship
# with the package, so notebooks can show both protocols without training.
PRECOMPUTED = ("hw14", "paper")
# Split MNIST, one run per scenario, for the instructor's demo (benchmarks/demo_runs.py; each file's "about"
# says how many iterations per task it trained)
SPLIT_PRECOMPUTED = tuple(f"split-mnist-{s}" for s in SCENARIOS)

FIGURES = {"forgetting_curves.png": plots.plot_forgetting_curves,
           "accuracy_matrix.png": plots.plot_accuracy_matrix,
           "average_accuracy.png": plots.plot_average_accuracy,
           "forgetting_heatmap.png": plots.plot_forgetting_heatmap}


def results_dict(config, results, device, n_train):
    return {
        "config": dataclasses.asdict(config) | {"methods": list(config.methods)},
        "environment": {"torch": torch.__version__, "python": platform.python_version(), "device": str(device),
                        "training_samples_per_task": n_train},
        "methods": {m: {"metrics": metrics.summary(h.accuracy_matrix, h.initial_accuracy),
                        "average_accuracy_per_epoch": h.average_accuracy,
                        "epoch_accuracy": h.epoch_accuracy,
                        "accuracy_matrix": h.accuracy_matrix,
                        "initial_accuracy": h.initial_accuracy,
                        "lambda": config.lam(m),
                        "wall_time_s": h.wall_time}
                    | ({"task_inference": h.task_inference} if h.task_inference is not None else {})
                    for m, h in results.items()},
    }


def summary_markdown(data):
    cfg, env = data["config"], data["environment"]
    benchmark = cfg.get("benchmark", "permuted-mnist")  # runs saved before Split MNIST had no such key
    permuted = benchmark == "permuted-mnist"
    scenario = cfg.get("scenario") or BENCHMARKS[benchmark].scenario
    steps = f" x {cfg['iterations']} iterations" if cfg.get("iterations") else ""
    lines = [
        "# cl-course results", "",
        f"{benchmark}, {scenario}-incremental; "
        f"protocol `{cfg['protocol']}`, {cfg['tasks']} tasks x {cfg['epochs']} epochs{steps}, "
        f"batch {cfg['batch_size']}, "
        f"Adam lr {cfg['lr']}, {env['training_samples_per_task']} training samples per task, seed {cfg['seed']}, "
        f"permutation seed {cfg['permutation_seed']}; torch {env['torch']} on {env['device']}.", "",
    ]
    # the TA's columns only where they compare: Permuted MNIST
    ta_header = " HW14 TA (%) | difference |" if permuted else ""
    lines += [f"| method | lambda | average accuracy (%) |{ta_header} BWT | FWT | forgetting | wall time (s) |",
              "|---|---|---|" + ("---|---|" if permuted else "") + "---|---|---|---|"]
    hw14_like = permuted and cfg["protocol"] == "hw14" and cfg["tasks"] == 5 and cfg["epochs"] == 10
    for m, r in data["methods"].items():
        k, ta = r["metrics"], HW14_TA_RESULTS.get(m)  # the TA ran no joint training
        diff = f"{k['average_accuracy'] - ta:+.2f}" if hw14_like and ta is not None else "n/a"
        ta_cells = (" n/a |" if ta is None else f" {ta:.2f} |") + f" {diff} |" if permuted else ""
        lines.append(f"| {m} | {r['lambda']:g} | {k['average_accuracy']:.2f} |{ta_cells} "
                     f"{k['backward_transfer']:+.2f} | {k['forward_transfer']:+.2f} | {k['forgetting']:.2f} | "
                     f"{r['wall_time_s']:.0f} |")
    lines += ["", "Average accuracy: mean test accuracy over all tasks after the last one (HW14's metric). "
              "BWT, FWT and forgetting in percentage points (see cl_course/metrics.py)."]
    inferring = {m: r["task_inference"] for m, r in data["methods"].items() if "task_inference" in r}
    if inferring:
        lines += ["", "Task inference after the last task (% of each task's test samples given their own task's "
                  "context): " + "; ".join(f"{m} {', '.join(f'{v:.1f}' for v in right.values())} "
                                          f"(mean {sum(right.values()) / len(right):.1f})"
                                          for m, right in inferring.items()) + "."]
    n = env["training_samples_per_task"]
    if not permuted:
        return "\n".join(lines) + "\n"  # the TA's table is Permuted MNIST's
    if n < 60000:
        lines += ["", f"HW14 trained on all 60,000 MNIST training images per task; this run on {n:,} "
                  f"({60000 / n:.1f}x fewer optimiser steps per task), which changes how much each task is learnt "
                  "and how much of the earlier ones is forgotten."]
    if not hw14_like:
        lines += ["", "The TA's numbers are for the HW14 protocol with 5 tasks x 10 epochs; this run differs, "
                  "so no difference is given."]
    return "\n".join(lines) + "\n"


def write_outputs(out, config, results, device, n_train):
    """Write results.json, the PNGs and summary.md under `out`; return the results dict."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = results_dict(config, results, device, n_train)
    (out / "results.json").write_text(json.dumps(data, indent=1))
    title = (f"{config.benchmark} ({config.the_scenario()}-IL), {config.protocol} protocol, {config.tasks} tasks x "
             f"{config.epochs} epochs, {n_train:,} training images per task")
    for name, plot in FIGURES.items():
        plot(results, out / name, title=title)
    (out / "summary.md").write_text(summary_markdown(data))
    return data


def histories(data):
    """{method: History} back from a results dict."""
    return {m: History(r["epoch_accuracy"], r["accuracy_matrix"], r["initial_accuracy"],
                       data["config"]["epochs"], r["wall_time_s"])
            for m, r in data["methods"].items()}


def precomputed(protocol="hw14"):
    """The shipped full run of `protocol` as a results dict (see PRECOMPUTED), or a Split MNIST
    scenario's shipped run by its name in SPLIT_PRECOMPUTED."""
    if protocol not in PRECOMPUTED + SPLIT_PRECOMPUTED:
        raise ValueError(f"no precomputed run for {protocol!r}; there are: "
                         f"{', '.join(PRECOMPUTED + SPLIT_PRECOMPUTED)}")
    return json.loads(files("cl_course").joinpath("precomputed", f"{protocol}.json").read_text())
