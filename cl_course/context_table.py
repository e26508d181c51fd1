"""`python -m cl_course context-table`: the context-specific family in task-IL over seeds, beside the published
numbers found for it, with bounds stated before any run (`BOUNDS`); and the turn: the same methods in class-IL with
the task inferred (context.py), beside experience replay, with how often the task was inferred right.

Split MNIST in van de Ven & Tolias's protocol (table.protocol); Permuted MNIST with 10 tasks in theirs (MLP
2x1000, Adam 1e-4, 5,000 iterations of 128 per task, one 10-way head per task in task-IL): about 15 CPU-hours a
seed, meant for a GPU or a Dask cluster (`--scheduler`, `--cluster local`). Each benchmark keeps its runs in
OUT/<benchmark>/runs.json: a rerun resumes, and the lambdas of XdG's combinations are chosen on held-out training
images as the Split MNIST table chooses the regularisers' (table.choose_lambdas).
"""
import json
import math
import os
import time
from dataclasses import asdict, replace
from pathlib import Path

from . import metrics, registry
from .cluster import dask_pool
from .table import Cell, Runs, choose_lambdas, final_average, mean_sem, protocol

BENCHMARKS = ("split-mnist", "permuted-mnist")
TASK_METHODS = registry.chosen("baseline", "separate", "xdg", "xdg-si", "xdg-ewc", "packnet", "hat", "progressive")
INFERRED = registry.chosen("separate", "xdg", "packnet", "hat", "progressive")  # those that run with the task inferred
REPLAY_REFERENCE = registry.chosen("er")  # lesson 2's replay, beside the turn


def permuted_protocol(**overrides):
    """van de Ven & Tolias's Permuted MNIST: 10 tasks (the first unpermuted), MLP 2x1000, Adam 1e-4, 5,000
    iterations of 128 per task, the paper's importances (their code's defaults; their issue #4 confirms them)."""
    return replace(protocol(benchmark="permuted-mnist", tasks=10, iterations=5000, lr=1e-4, hidden=(1000, 1000)),
                   **overrides)


PROTOCOLS = {"split-mnist": protocol, "permuted-mnist": permuted_protocol}

# Published task-IL numbers (%), with where they come from; "unverified": recalled, not read in a source here
PUBLISHED = {
    ("split-mnist", "xdg"): (99.10, "van de Ven & Tolias 2019, arXiv:1904.07734 (a later version than the Split "
                                    "MNIST table's v1), 99.10 +-0.08: unverified; their 2022 tutorial figure "
                                    "(GMvandeVen/continual-learning, splitMNIST_results_tutorial.png) reads about 99"),
    ("split-mnist", "separate"): (99.0, "van de Ven et al.'s 2022 tutorial figure (784-100-100 per task), read "
                                        "from the figure: about 99"),
    ("split-mnist", "baseline"): (93.46, "Hsu et al. 2018, Table 2 (Adam, 4 epochs per task), 93.46 +-2.01"),
    ("permuted-mnist", "xdg"): (91.40, "van de Ven & Tolias 2019, arXiv:1904.07734 (a later version), 91.40 +-0.23: "
                                       "unverified"),
}
# Bounds stated before running (issue 27): what follows from each method, and the published numbers' neighbourhood
FROZEN = ("separate", "packnet", "progressive")  # nothing a later task trains can change an earlier task's answers
HAT_BWT = -0.5
SPLIT_FLOOR = 99.0         # every context method on Split MNIST task-IL
SEPARATE_MARGIN = 2.0      # every context method within this of separate networks on Permuted MNIST-10 task-IL
PUBLISHED_MARGIN = 1.0     # ours within this of a published task-IL number
# Why a bound misses, where the reason is known (the summary prints it beside the miss)
EXPLANATIONS = {
    ("split-mnist", "xdg"): "the gated share: XdG switches off 80% of each hidden layer per task (Masse et al.'s, "
                            "on Permuted MNIST), so a task keeps a random fifth of each layer, of which a fifth on "
                            "average is also kept by any given other task, whose training moves it (BWT -3.1); van "
                            "de Ven & Tolias's code switches off 95% on Split MNIST (90% in their 2022 code), where "
                            "a twentieth of a task's units are another's (a run with 95% off, seed 1, outside this "
                            "table: 98.85, BWT -0.48). With a regulariser on what is shared (Masse et al.'s "
                            "combination) it holds: xdg-si and xdg-ewc",
}


def cells(benchmark, seeds, chosen, scenario_methods):
    return [Cell(m, s, seed, chosen.get((m, s), 0.0), False, task_inference=s != "task" and m in INFERRED)
            for seed in range(1, seeds + 1) for s, methods in scenario_methods.items() for m in methods]


def run_benchmark(out, benchmark, seeds, workers, pool, base):
    """Every cell of one benchmark: {"lambdas", "lambda_tuning", "cells": {scenario: {method: summary}}}."""
    runs = Runs(Path(out) / benchmark / "runs.json", pool)
    chosen, tuning = choose_lambdas(runs, base, TASK_METHODS, ["task"], workers)
    scenario_methods = {"task": TASK_METHODS}
    if benchmark == "split-mnist":
        scenario_methods["class"] = ("baseline", *INFERRED, *REPLAY_REFERENCE)
    results = runs.run(cells(benchmark, seeds, chosen, scenario_methods), base, workers, desc=benchmark)
    by = {}
    for c, r in results.items():
        by.setdefault(c.scenario, {}).setdefault(c.method, []).append(r)
    summary = {s: {m: {"final_average_accuracy": [final_average(r) for r in rs],
                       "mean_sem": mean_sem([final_average(r) for r in rs]),
                       "bwt": [metrics.backward_transfer(r["accuracy_matrix"]) for r in rs],
                       "task_inference": [r["task_inference"] for r in rs if r.get("task_inference")],
                       "wall_time_s": [r["wall_time_s"] for r in rs]}
                   for m, rs in ms.items()} for s, ms in by.items()}
    return {"protocol": asdict(base), "lambdas": {f"{m}|{s}": lam for (m, s), lam in chosen.items()},
            "lambda_tuning": tuning, "cells": summary,
            "runs_time_s": sum(r["wall_time_s"] for r in runs.done.values())}  # every run kept, grids included


def bounds(benchmark, cells):
    """(method, the bound, our value, whether it holds) for one benchmark's task-IL cells."""
    task = cells.get("task", {})
    checks = []
    for m, c in task.items():
        if m == "baseline":
            continue
        mean, worst_bwt = c["mean_sem"][0], min(c["bwt"])
        if m in FROZEN:
            checks.append((m, "BWT exactly 0.00 on every seed", worst_bwt, all(b == 0.0 for b in c["bwt"])))
        if m == "hat":
            checks.append((m, f"BWT at least {HAT_BWT} on every seed", worst_bwt, worst_bwt >= HAT_BWT))
        if benchmark == "split-mnist":
            checks.append((m, f"at least {SPLIT_FLOOR}", mean, mean >= SPLIT_FLOOR))
        elif m != "separate" and "separate" in task:
            separate = task["separate"]["mean_sem"][0]
            checks.append((m, f"within {SEPARATE_MARGIN} of separate networks ({separate:.2f})", mean,
                           abs(mean - separate) <= SEPARATE_MARGIN))
        if (benchmark, m) in PUBLISHED:
            published = PUBLISHED[(benchmark, m)][0]
            checks.append((m, f"within {PUBLISHED_MARGIN} of published {published:.2f}", mean,
                           abs(mean - published) <= PUBLISHED_MARGIN))
    return checks


def build_context_table(out, benchmarks=BENCHMARKS, seeds=3, workers=None, scheduler=None, cluster=None,
                        **overrides):
    """Run the benchmarks' cells and write results.json and summary.md to `out`; `overrides` change every
    benchmark's protocol (data_root, iterations: shorter runs for a try)."""
    unknown = [b for b in benchmarks if b not in PROTOCOLS]
    if unknown:
        raise ValueError(f"unknown benchmark {unknown[0]!r}; choose from {', '.join(PROTOCOLS)}")
    out, start = Path(out), time.perf_counter()
    workers = workers or max(1, min(2, os.cpu_count() or 1))
    with dask_pool(workers, scheduler, cluster) as pool:
        data = {b: run_benchmark(out, b, seeds, workers, pool, PROTOCOLS[b](**overrides)) for b in benchmarks}
    data = {"seeds": seeds, "benchmarks": data, "wall_time_s_this_call": time.perf_counter() - start}
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(data, indent=1))
    (out / "summary.md").write_text(summary_markdown(data))
    return data


def _cell(c):
    mean, sem = c["mean_sem"]
    return f"{mean:.2f} +-{sem:.2f}" if not math.isnan(sem) else f"{mean:.2f}"


def summary_markdown(data):
    lines = ["# The context-specific family: task-IL, and class-IL with the task inferred", "",
             f"{data['seeds']} seed{'s' if data['seeds'] > 1 else ''} per cell (final average accuracy, %; mean +- SEM "
             "over seeds); BWT: backward transfer (0: nothing forgotten).", ""]
    for benchmark, b in data["benchmarks"].items():
        p = b["protocol"]
        lines += [f"## {benchmark}", "", f"MLP 784-{'-'.join(str(h) for h in p['hidden'] or (400, 400))}, "
                  f"Adam lr {p['lr']}, {p['iterations']} iterations of {p['batch_size']} per task, {p['tasks']} tasks.",
                  "", "| method | task-IL | BWT (worst seed) | published |", "|---|---|---|---|"]
        for m, c in b["cells"].get("task", {}).items():
            lines.append(f"| {m} | {_cell(c)} | {min(c['bwt']):+.2f} | {PUBLISHED.get((benchmark, m), ('', ''))[1]} |")
        if "class" in b["cells"]:
            lines += ["", "Class-IL, the task inferred (the context of lowest entropy) for the context methods:", "",
                      "| method | class-IL | task inferred right (% of test samples, mean over tasks and seeds) |",
                      "|---|---|---|"]
            for m, c in b["cells"]["class"].items():
                rates = [v for run in c["task_inference"] for v in run.values()]
                lines.append(f"| {m} | {_cell(c)} | {sum(rates) / len(rates):.1f} |" if rates else
                             f"| {m} | {_cell(c)} | |")
        checks = bounds(benchmark, b["cells"])
        lines += ["", f"Bounds (stated before running): {sum(c[-1] for c in checks)} of {len(checks)} hold", "",
                  "| method | bound | ours | holds | why not |", "|---|---|---|---|---|"]
        lines += [f"| {m} | {what} | {v:.2f} | {'yes' if ok else 'no'} | "
                  f"{'' if ok else EXPLANATIONS.get((benchmark, m), 'not known yet')} |" for m, what, v, ok in checks]
        lines += ["", "Lambdas of XdG's combinations, chosen on held-out training images (seed 1):", ""]
        lines += [f"- {k.replace('|', ', ')}: {v:g} (grid: {b['lambda_tuning'][k]})" for k, v in b["lambdas"].items()]
        lines.append("")
    runs = sum(b["runs_time_s"] for b in data["benchmarks"].values())
    lines.append(f"Made by `python -m cl_course context-table`; every run is in OUT/<benchmark>/runs.json, and "
                 f"running the command again resumes from it. Its runs took {runs / 60:.0f} minutes (one thread "
                 f"each, the lambda grids included); the call that wrote this took "
                 f"{data['wall_time_s_this_call'] / 60:.0f} minutes, and runs it found in runs.json cost it nothing.")
    return "\n".join(lines) + "\n"
