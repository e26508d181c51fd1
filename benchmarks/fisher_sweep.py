"""The Fisher lesson, measured: online EWC on Split MNIST task-IL (van de Ven & Tolias's protocol) with the
four ways of computing the Fisher, over a wide sweep of lambda, after van de Ven's ICLR 2025 blog post
("the best accuracies match, but the usable lambda moves by orders of magnitude").

    CL_COURSE_DATA=../shared/data python benchmarks/fisher_sweep.py [--seeds 3] [--workers 2] \
        [--out benchmarks/results/fisher_sweep]

Writes runs.json (resumable), results.json, summary.md and sweep.png; then times one Fisher computation of
each mode on a trained model (all of a task's training images, one thread).
"""
import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from cl_course import metrics  # noqa: E402
from cl_course.config import FISHER_LABELS  # noqa: E402
from cl_course.data import DataError, index_batches, load_mnist  # noqa: E402
from cl_course.importance import fisher_diagonal  # noqa: E402
from cl_course.table import Cell, Runs, mean_sem, protocol  # noqa: E402
from cl_course.train import fit, load_tasks, seed_everything  # noqa: E402
from cl_course.methods import make_strategy  # noqa: E402
from cl_course.model import MLP  # noqa: E402

LAMBDAS = [10.0 ** k for k in range(0, 15, 2)]  # 1e0 .. 1e14: 8 values, the blog's 1e0..1e13 and a step beyond
BLOG = {"exact": "99.12 +-0.16 (best lambda about 1e5; 121 s)", "sampled": "99.12", "empirical": "99.12",
        "batch": "99.11 (b = 128; best lambda about 1e10-1e11; 58 s)", "none": "85.41"}


def fisher_times(base, repeats=10):
    """Seconds per Fisher computation of each mode, on the first task's model after its 2,000 iterations, with
    importance batches of 128 and (the per-sample modes, whose Fisher does not depend on it) of 1,024."""
    torch.set_num_threads(1)
    config = base
    tasks = load_tasks(config, "cpu")
    seed_everything(1)
    model = MLP(2, heads=5, hidden=config.hidden_sizes())
    fit(model, tasks[:1], make_strategy("baseline", config), epochs=1, batch_size=128, lr=config.lr,
        iterations=config.iterations, progress=False, generator=torch.Generator().manual_seed(1))
    model.use_head(0)
    times = {labels: {} for labels in FISHER_LABELS}
    for _ in range(repeats):  # rounds over every mode, so that a slow spell of the machine hits them all
        for labels in FISHER_LABELS:
            for size in (128,) if labels == "batch" else (128, 1024):
                start = time.perf_counter()
                fisher_diagonal(model, index_batches(tasks[0].x_train, tasks[0].y_train, size), labels,
                                torch.Generator().manual_seed(0))
                seconds = time.perf_counter() - start
                times[labels][str(size)] = min(seconds, times[labels].get(str(size), seconds))
    return times, len(tasks[0].x_train)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=2000, help="per task (fewer: a smoke test only)")
    parser.add_argument("--out", default="benchmarks/results/fisher_sweep")
    args = parser.parse_args()
    for name in ("seeds", "workers", "iterations"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    try:
        load_mnist()  # a missing data root stops here, in one line, not in a worker
    except DataError as e:
        sys.exit(f"fisher_sweep.py: error: {e}")
    out = Path(args.out)
    # importance batches of 128: the blog's BATCHED b = 128; the per-sample modes give the same Fisher at any size
    base = protocol(importance_batch_size=128, iterations=args.iterations)
    cells = [Cell("baseline", "task", seed, 0.0, False) for seed in range(1, args.seeds + 1)]
    cells += [Cell("online-ewc", "task", seed, lam, False, labels) for seed in range(1, args.seeds + 1)
              for labels in FISHER_LABELS for lam in LAMBDAS]
    start = time.perf_counter()
    results = Runs(out / "runs.json").run(cells, base, args.workers, desc="fisher sweep")
    final, run_seconds = {}, {}
    for c, r in results.items():
        final.setdefault(c.fisher_labels or "none", {}).setdefault(c.lam, []).append(
            metrics.average_accuracy(r["accuracy_matrix"]))
        run_seconds.setdefault(c.fisher_labels or "none", []).append(r["wall_time_s"])
    times, n = fisher_times(base)
    data = {"protocol": f"split-mnist task-IL, online EWC (gamma 1), MLP 2x400, Adam 0.001, "
                        f"{base.iterations:,} iterations of {base.batch_size}",
            "seeds": args.seeds, "lambdas": LAMBDAS, "importance_batch_size": 128,
            "accuracy": {mode: {f"{lam:g}": mean_sem(v) for lam, v in by_lam.items()}
                         for mode, by_lam in final.items()},
            "fisher_seconds": times, "fisher_samples": n,
            "run_seconds_median": {mode: statistics.median(v) for mode, v in run_seconds.items()},
            "wall_time_s_this_call": time.perf_counter() - start}
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(data, indent=1))
    plot(data, out / "sweep.png")
    (out / "summary.md").write_text(summary(data))
    print(f"wrote {out}/summary.md, results.json and sweep.png")


def plot(data, path):
    fig = Figure(figsize=(6.5, 4), layout="constrained")
    ax = fig.subplots()
    for mode in FISHER_LABELS:
        points = sorted((float(k), m) for k, (m, _) in data["accuracy"][mode].items())
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=mode)
    none = data["accuracy"]["none"]["0"][0]
    ax.axhline(none, color="grey", ls="--", label=f"none ({none:.1f})")
    ax.set_xscale("log")
    ax.set_xlabel("lambda")
    ax.set_ylabel("final average accuracy (%)")
    ax.set_title("Online EWC, Split MNIST task-IL:\nthe Fisher's label mode moves the usable lambda")
    ax.legend(title="Fisher")
    fig.savefig(path, dpi=110)


def summary(data):
    lines = ["# The Fisher lesson: online EWC on Split MNIST task-IL", "",
             f"{data['protocol']}; {data['seeds']} seeds per point (mean +- SEM, %); importance batches of "
             f"{data['importance_batch_size']}. van de Ven's blog post: 30 seeds, on a GPU.", "",
             "| lambda | " + " | ".join(FISHER_LABELS) + " |", "|---|" + "---|" * len(FISHER_LABELS)]
    for lam in data["lambdas"]:
        cells = [data["accuracy"][mode].get(f"{lam:g}") for mode in FISHER_LABELS]
        lines.append(f"| {lam:g} | " + " | ".join(f"{m:.2f} +-{s:.2f}" for m, s in cells) + " |")
    lines += ["", "| mode | best lambda | best accuracy | blog (30 seeds) | one Fisher (s), batches of 128 / 1,024 "
              "| one run (s, median) |",
              "|---|---|---|---|---|---|"]
    for mode in FISHER_LABELS:
        lam, (m, s) = max(data["accuracy"][mode].items(), key=lambda kv: kv[1][0])
        seconds = " / ".join(f"{t:.2f}" for t in data["fisher_seconds"][mode].values())
        lines.append(f"| {mode} | {float(lam):g} | {m:.2f} +-{s:.2f} | {BLOG[mode]} | {seconds} | "
                     f"{data['run_seconds_median'][mode]:.0f} |")
    m, s = data["accuracy"]["none"]["0"]
    lines += [f"| none | | {m:.2f} +-{s:.2f} | {BLOG['none']} | | {data['run_seconds_median']['none']:.0f} |", "",
              f"One Fisher: all {data['fisher_samples']:,} training images of task 1 on one CPU thread (best of 10). "
              "One run: 5 tasks of training, the Fisher after each and the evaluations, one thread, two runs side by "
              "side (the blog's 121 s and 58 s are whole runs on a GPU).", "",
              "Made by `CL_COURSE_DATA=../shared/data python benchmarks/fisher_sweep.py` (every run is in runs.json "
              "beside this file; running it again resumes from it and measures the Fisher times again)."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
