"""`python -m cl_course table`: every method in every scenario of Split MNIST over several seeds, beside
van de Ven & Tolias's published table, with the regularisers' lambdas chosen on held-out training data.

Each finished run is kept in <out>/runs.json at once, so an interrupted table resumes where it stopped
and a bigger one (more seeds) reuses the runs it already has.
"""
import contextlib
import json
import math
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from tqdm.auto import tqdm

from . import metrics, registry
from .cluster import dask_pool
from .config import RunConfig
from .data import SCENARIOS, Task

# van de Ven & Tolias (2019, "Three scenarios for continual learning"), Split MNIST, 20 seeds: mean, SEM (%)
PUBLISHED = {
    "baseline": {"task": (85.15, 1.00), "domain": (57.33, 1.66), "class": (19.90, 0.02)},
    "ewc": {"task": (85.48, 1.20), "domain": (57.80, 1.61), "class": (19.90, 0.02)},
    "online-ewc": {"task": (85.22, 1.06), "domain": (57.60, 1.66), "class": (19.90, 0.02)},
    "si": {"task": (99.14, 0.11), "domain": (63.77, 1.18), "class": (20.04, 0.08)},
    "lwf": {"task": (99.60, 0.03), "domain": (71.02, 1.26), "class": (24.17, 0.51)},
    "dgr": {"task": (99.47, 0.03), "domain": (95.74, 0.23), "class": (91.24, 0.33)},
    "dgr-distill": {"task": (99.59, 0.03), "domain": (96.94, 0.14), "class": (91.84, 0.27)},
    "joint": {"task": (99.64, 0.03), "domain": (98.41, 0.06), "class": (97.93, 0.04)},
}
# Hsu et al. (2018, "Re-evaluating continual learning scenarios", 10 runs, 4 epochs per task, MLP 2x400):
# task-, domain-, class-IL (%)
HSU = {"baseline": (93.46, 55.16, 19.71), "ewc": (97.70, 58.85, 19.80), "online-ewc": (98.04, 57.33, 19.77),
       "si": (98.56, 64.76, 19.67), "mas": (99.22, 68.57, 19.52), "gem": (98.42, 96.16, 92.20),
       "er": (99.40, 95.16, 90.78),  # naive rehearsal, 1,100 stored samples
       "joint": (99.52, 98.59, 97.53)}
# van de Ven et al.'s later runs
LATER = {("ewc", "task"): "98.64 (better lambdas)", ("icarl", "class"): "94.57 (budget 2,000)"}
# EWC as the paper protocol runs it (summed Fishers, one anchor at the latest parameters) is online EWC with
# gamma = 1, the run's default, so the table runs that once, as online-ewc.
TABLE_METHODS = registry.chosen("baseline", "online-ewc", "si", "lwf", "er", "agem", "gem", "dgr", "dgr-distill",
                                "icarl", "joint")
# The regularisers' grids (each extended by a factor 10 while the best value sits at an end). They reach past van de
# Ven's own Split MNIST values (SI c up to 50,000, our 1e5 with our penalty's 1/2; EWC up to 1e10), since held-out
# accuracy is noisy enough between neighbours that growing a narrow grid only from its end can stop too soon.
GRIDS = {"ewc": (1e2, 1e4, 1e6, 1e8, 1e10), "online-ewc": (1e2, 1e4, 1e6, 1e8, 1e10),
         "si": (1.0, 10.0, 100.0, 1e3, 1e4, 1e5), "mas": (0.1, 1.0, 10.0)}
GRIDS |= {"xdg-si": GRIDS["si"], "xdg-ewc": GRIDS["ewc"]}  # XdG's combinations (context_table)
if not all(registry.spec(m).takes_lambda for m in GRIDS):  # at import, not after hours of runs nothing reads
    raise ValueError("table.GRIDS: a grid for a method that takes no lambda (only regularisers do)")
VALIDATION = 0.1  # the share of each task's training images held out to choose lambdas


def protocol(**overrides):
    """van de Ven & Tolias's Split MNIST protocol: MLP 2x400, Adam 0.001, 2,000 iterations of 128 per task
    (plus 128 replayed), the exact Fisher; importances from each task's training data (`paper`)."""
    return replace(RunConfig(benchmark="split-mnist", protocol="paper", tasks=5, epochs=1, iterations=2000,
                             batch_size=128, lr=1e-3, fisher_labels="exact", importance_batch_size=256,
                             eval_batch_size=4096), **overrides)


REPLAY = registry.names("replay")  # the methods with a memory, whose cells carry its budget


@dataclass(frozen=True)
class Cell:
    method: str
    scenario: str
    seed: int
    lam: float
    validation: bool  # trained on 90% of the training images, tested on the other 10%
    fisher_labels: str | None = None  # None: the base config's
    budget: int | None = None  # replay methods: the memory's total budget (None: the runs before the budget,
                               # which kept 100 samples per class, growing to 1,000 by the last task)
    selection: str = "random"  # how ER, A-GEM and GEM fill the memory
    task_inference: bool = False  # a context-specific method without the task: the context is inferred

    def key(self):
        labels = f"|{self.fisher_labels}" if self.fisher_labels else ""
        memory = (f"|budget {self.budget}" if self.budget else "") + \
            (f"|{self.selection}" if self.selection != "random" else "")
        return f"{self.method}|{self.scenario}|{self.seed}|{self.lam:g}|{'validation' if self.validation else 'test'}" \
               + labels + memory + ("|task inferred" if self.task_inference else "")

    def config(self, base):
        """The RunConfig of this cell's run on top of `base`."""
        return replace(base, methods=(self.method,), scenario=self.scenario, seed=self.seed,
                       lambdas={self.method: self.lam}, fisher_labels=self.fisher_labels or base.fisher_labels,
                       memory_budget=self.budget or base.memory_budget, memory_selection=self.selection,
                       task_inference=self.task_inference)


def validation_tasks(tasks, share=VALIDATION, seed=0):
    """Each task's training images split: the first 90% of a fixed shuffle to train, the rest to test."""
    import torch
    out = []
    for k, t in enumerate(tasks):
        order = torch.randperm(len(t.x_train), generator=torch.Generator().manual_seed(seed + k)).to(t.x_train.device)
        n_val = int(len(order) * share)
        train, val = order[n_val:], order[:n_val]
        out.append(Task(t.name, t.x_train[train], t.y_train[train], t.x_train[val], t.y_train[val], t.head, t.classes))
    return out


def run_cell(cell, base, tasks=None):
    """One method, one scenario, one seed: its accuracy matrix and wall time. In a worker process, one thread,
    on the CPU; or in this process on `tasks` already loaded for the cell (the notebook's budget sweep)."""
    import torch

    from .train import load_tasks, run_methods
    config = cell.config(base)
    if tasks is None:
        torch.set_num_threads(1)  # the workers run side by side on a small CPU
        tasks = load_tasks(config, "cpu")
        if cell.validation:
            tasks = validation_tasks(tasks)
    history = run_methods(config, tasks, progress=False)[cell.method]
    return {"accuracy_matrix": history.accuracy_matrix, "wall_time_s": history.wall_time,
            "training_samples_per_task": [len(t.x_train) for t in tasks]} \
        | ({"task_inference": history.task_inference} if history.task_inference else {})


class Runs:
    """runs.json: every finished cell by key, written after each one. `pool`: an Executor the runs go to (a Dask
    cluster's, cluster.dask_pool); None: `workers` processes here, or this process for one."""

    def __init__(self, path, pool=None):
        self.path = Path(path)
        self.pool = pool
        self.done = json.loads(self.path.read_text()) if self.path.exists() else {}

    def run(self, cells, base, workers=1, desc="runs"):
        todo = [c for c in dict.fromkeys(cells) if c.key() not in self.done]
        with tqdm(total=len(todo), desc=desc) as bar:
            if self.pool is None and workers == 1:
                for c in todo:
                    self.keep(c, run_cell(c, base))
                    bar.update()
            else:
                with contextlib.nullcontext(self.pool) if self.pool else ProcessPoolExecutor(workers) as pool:
                    futures = {pool.submit(run_cell, c, base): c for c in todo}
                    for f in as_completed(futures):
                        self.keep(futures[f], f.result())
                        bar.update()
        return {c: self.done[c.key()] for c in cells}

    def keep(self, cell, result):
        self.done[cell.key()] = result | {"cell": asdict(cell)}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.done, indent=1))


def final_average(result):
    return metrics.average_accuracy(result["accuracy_matrix"])


def choose_lambdas(runs, base, methods, scenarios, workers):
    """For each regulariser and scenario: the grid value with the best final average accuracy on the
    validation split (seed 1), the grid extended by 10x while the best sits at an end, strictly ahead of
    its neighbour."""
    chosen, scores = {}, {}
    for scenario in scenarios:
        for method in (m for m in methods if m in GRIDS):
            grid = list(GRIDS[method])
            while True:
                cells = [Cell(method, scenario, 1, lam, True) for lam in grid]
                results = runs.run(cells, base, workers, desc=f"lambda {method} {scenario}")
                score = {c.lam: final_average(r) for c, r in results.items()}
                best = max(grid, key=lambda lam: (score[lam], -lam))  # a tie: the smaller lambda
                if best == grid[0] and score[best] > score[grid[1]] and grid[0] / 10 >= 1e-3:
                    grid.insert(0, grid[0] / 10)
                elif best == grid[-1] and score[best] > score[grid[-2]] and grid[-1] * 10 <= 1e12:
                    grid.append(grid[-1] * 10)
                else:
                    break
            chosen[(method, scenario)] = best
            scores[f"{method}|{scenario}"] = {f"{lam:g}": round(score[lam], 2) for lam in grid}
    return chosen, scores


# Why a cell misses its bound, where the reason is known (the summary prints it beside the miss)
EXPLANATIONS = {
    ("baseline", "task"): "published numbers for this cell disagree: Hsu et al. (Adam too) report 93.46 +-2.01; "
                          "fine-tuning's task-IL accuracy depends on how far the shared layers drift, not "
                          "established here why van de Ven & Tolias's runs drifted further",
    ("online-ewc", "task"): "our lambda is chosen on held-out data (the grid below); van de Ven & Tolias's 85.22 used "
                            "one that barely regularised in task-IL; their later runs with better lambdas reach "
                            "98.64 and Hsu et al. 98.04",
    ("online-ewc", "class"): "our lambda, chosen on held-out data (1e6: 21.4 there, 19.6-20.0 elsewhere), keeps "
                             "a little of the latest old task on some seeds (seeds 20.1, 25.5, 22.4; seed 2 keeps "
                             "26% of task 4's digits), where the published runs' lambda kept none; the lesson "
                             "stands: at most a few points above 20, against 84.7-92.8 for ER, A-GEM, DGR and iCaRL",
    ("si", "class"): "as online EWC here: the held-out choice (c = 1,000: 22.2 there, 18.8-22.0 elsewhere) keeps "
                     "a little of the latest old task on two seeds (23.8, 22.1, 20.0; seed 1 keeps 18% of task 4's "
                     "digits), the published runs none",
    ("gem", "class"): "Hsu et al. ran GEM with plain SGD (lr 0.01), a margin of 0.5 and 1,100 stored samples; "
                      "ours steps with Adam (the protocol's optimiser), whose per-parameter scaling and momentum "
                      "make the step differ from the projected gradient, so GEM's guarantee (for a step along it) "
                      "no longer holds; no margin; 1,000 stored samples in all (250 per class before the last "
                      "task). The budget lifted it from 71.6 (100 per class) to 84.6, level with A-GEM (84.7), with "
                      "seeds far apart (89.5, 82.4, 81.9); not established which difference costs the rest",
    ("lwf", "class"): "the same failure as published, a little more complete: the previous model calls every "
                      "new digit one of its own classes, and distillation (weight (1 - 1/t) T^2 = 2 at t = 2) "
                      "outweighs the new task's loss (1/2), so the model keeps task 1's digits (99.7-99.9%) "
                      "and learns no later task's (0-5% on each at the end); van de Ven & Tolias distil over "
                      "the old classes only, with the softmax over the classes seen so far; not established "
                      "whether that gives their extra 3.7 points",
}


def acceptance(cells):
    """The bounds the reproduction is held to: (method, scenario, the bound, our mean, whether it holds)."""
    def mean(m, s):
        return cells.get(m, {}).get(s, {}).get("mean_sem", (None,))[0]

    checks, covered = [], set()

    def check(m, s, what, holds):
        covered.add((m, s))
        if mean(m, s) is not None:
            checks.append((m, s, what, mean(m, s), holds(mean(m, s))))
    for m in ("baseline", "ewc", "online-ewc", "si"):
        check(m, "class", "within 1.5 of 20", lambda v: abs(v - 20) <= 1.5)
    for m in ("er", "dgr", "icarl"):
        check(m, "class", "at least 80", lambda v: v >= 80)
    regularisers = [v for v in (mean(m, "class") for m in registry.names("regularisation")) if v is not None]
    if regularisers:
        check("agem", "class", f"at least 10 above every regulariser ({max(regularisers):.2f})",
              lambda v: v >= max(regularisers) + 10)
    check("joint", "class", "within 2 of 97.93", lambda v: abs(v - 97.93) <= 2)
    for m in ("lwf", "er", "agem", "gem", "dgr", "dgr-distill", "joint"):
        check(m, "task", "at least 98.0", lambda v: v >= 98.0)
    for m, by_s in PUBLISHED.items():
        for s, (published, _) in by_s.items():
            if (m, s) not in covered:
                check(m, s, f"within 3 of {published:.2f}", lambda v, p=published: abs(v - p) <= 3)
    for m in [m for m in HSU if m not in PUBLISHED]:  # replay has no number of van de Ven & Tolias's: Hsu et al.'s
        for s, published in zip(SCENARIOS, HSU[m], strict=True):
            if (m, s) not in covered:
                check(m, s, f"within 3 of {published:.2f} (Hsu et al.)", lambda v, p=published: abs(v - p) <= 3)
    return checks


def mean_sem(values):
    n = len(values)
    mean = sum(values) / n
    sem = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1) / n) if n > 1 else float("nan")
    return mean, sem


def build_table(out, methods=TABLE_METHODS, scenarios=SCENARIOS, seeds=3, workers=None, base=None, scheduler=None,
                cluster=None):
    """Tune, run every cell, and write results.json, summary.md and scenarios.png to `out`; the runs on `workers`
    processes here, or on a Dask cluster (`scheduler`, or `cluster="local"` of `workers` processes). A regulariser
    without a grid in GRIDS is refused before any run (its lambda would be nobody's choice)."""
    ungridded = [m for m in methods if registry.spec(m).takes_lambda and m not in GRIDS]
    if ungridded:
        raise ValueError(f"the table chooses lambdas on held-out images from table.GRIDS, which has none for "
                         f"{', '.join(ungridded)}: add a grid there or leave {'it' if len(ungridded) == 1 else 'them'} "
                         "out of --methods")
    out = Path(out)
    base = base or protocol()
    workers = workers or max(1, min(2, os.cpu_count() or 1))
    start = time.perf_counter()
    with dask_pool(workers, scheduler, cluster) as pool:
        runs = Runs(out / "runs.json", pool)
        chosen, tuning = choose_lambdas(runs, base, methods, scenarios, workers)
        cells = [Cell(m, s, seed, chosen.get((m, s), 0.0), False, budget=base.memory_budget if m in REPLAY else None)
                 for seed in range(1, seeds + 1) for s in scenarios for m in methods if s in registry.spec(m).scenarios]
        results = runs.run(cells, base, workers, desc="table")
    table = {}
    for c, r in results.items():
        table.setdefault(c.method, {}).setdefault(c.scenario, []).append(r)
    data = {"protocol": asdict(base) | {"methods": list(methods)}, "seeds": seeds, "lambdas": {
                f"{m}|{s}": lam for (m, s), lam in chosen.items()}, "lambda_tuning": tuning,
            "training_samples_per_task": next(iter(results.values()))["training_samples_per_task"],
            "cells": {m: {s: {"final_average_accuracy": [final_average(r) for r in rs],
                              "mean_sem": mean_sem([final_average(r) for r in rs]),
                              "wall_time_s": [r["wall_time_s"] for r in rs]}
                          | ({"memory_budget": base.memory_budget} if m in REPLAY else {})
                          for s, rs in by_s.items()} for m, by_s in table.items()},
            "replay_before_budget": runs_before_the_budget(runs, cells),
            "wall_time_s_this_call": time.perf_counter() - start}
    (out / "results.json").write_text(json.dumps(data, indent=1))
    (out / "summary.md").write_text(summary_markdown(data))
    from .plots import plot_scenario_table
    plot_scenario_table(data, PUBLISHED, out / "scenarios.png")
    return data


def runs_before_the_budget(runs, cells):
    """{method: {scenario: final averages and mean +- SEM}} of the replay cells' runs from before the fixed
    budget (100 samples per class), where runs.json still holds them."""
    earlier = {}
    for c in cells:
        run = runs.done.get(replace(c, budget=None).key()) if c.budget else None
        if run:
            earlier.setdefault(c.method, {}).setdefault(c.scenario, []).append(final_average(run))
    return {m: {s: {"final_average_accuracy": v, "mean_sem": mean_sem(v)} for s, v in by_s.items()}
            for m, by_s in earlier.items()}


def summary_markdown(data):
    p = data["protocol"]
    n = data["training_samples_per_task"]
    cpu_time = sum(sum(c["wall_time_s"]) for by_s in data["cells"].values() for c in by_s.values())
    lines = ["# Split MNIST in the three scenarios", "",
             f"MLP 784-{'-'.join(str(h) for h in (p['hidden'] or (400, 400)))}, Adam lr {p['lr']}, "
             f"{p['iterations']} iterations of {p['batch_size']} per task (plus as many replayed), "
             f"{data['seeds']} seeds per cell (mean +- SEM, %). The offline training set has 24,680 images, so "
             f"each task trains on {min(n):,}-{max(n):,} images (van de Ven & Tolias: about 12,000).",
             "", f"Replay (ER, A-GEM, GEM, iCaRL) keeps a memory of {p['memory_budget']:,} samples in all, shared "
             f"equally among the classes seen so far ({p['memory_selection']} selection for ER, A-GEM and GEM, "
             "herding for iCaRL): each class keeps the first budget // classes of its order.",
             "", "Published: van de Ven & Tolias 2019 (20 seeds, mean +- SEM) and their later runs; Hsu et al. 2018.",
             "", "| method | " + " | ".join(f"{s}-IL ours | published | Hsu et al." for s in SCENARIOS) + " |",
             "|---|" + "---|---|---|" * len(SCENARIOS)]
    for m, by_s in data["cells"].items():
        row = [m]
        for s in SCENARIOS:
            if s in by_s:
                mean, sem = by_s[s]["mean_sem"]
                row.append(f"{mean:.2f} +-{sem:.2f}" if not math.isnan(sem) else f"{mean:.2f}")
            else:
                row.append("n/a")
            pub = PUBLISHED.get(m, {}).get(s)
            row.append(f"{pub[0]:.2f} +-{pub[1]:.2f}" if pub else LATER.get((m, s), ""))
            row.append(f"{HSU[m][SCENARIOS.index(s)]:.2f}" if m in HSU else "")
        lines.append("| " + " | ".join(row) + " |")
    earlier = data.get("replay_before_budget") or {}
    if earlier:
        lines += ["", "The same replay cells before the fixed budget, with 100 samples per class (200 stored after "
                  "the first task, growing to 800 before the last; runs.json keeps them apart):", "",
                  "| method | " + " | ".join(f"{s}-IL, {p['memory_budget']:,} in all | 100 per class"
                                           for s in SCENARIOS) + " |", "|---|" + "---|---|" * len(SCENARIOS)]
        for m, by_s in earlier.items():
            row = [m]
            for s in SCENARIOS:
                now, then = data["cells"].get(m, {}).get(s), by_s.get(s)
                row += [f"{now['mean_sem'][0]:.2f} +-{now['mean_sem'][1]:.2f}" if now else "n/a",
                        f"{then['mean_sem'][0]:.2f} +-{then['mean_sem'][1]:.2f}" if then else "n/a"]
            lines.append("| " + " | ".join(row) + " |")
    checks = acceptance(data["cells"])
    lines += ["", f"## Bounds: {sum(c[-1] for c in checks)} of {len(checks)} hold", "",
              "| method | scenario | bound | ours | holds | why not |", "|---|---|---|---|---|---|"]
    lines += [f"| {m} | {s} | {what} | {v:.2f} | {'yes' if ok else 'no'} | "
              f"{'' if ok else EXPLANATIONS.get((m, s), 'not known yet')} |" for m, s, what, v, ok in checks]
    lines += ["", "Lambdas, chosen on 10% of each task's training images held out (seed 1; never the test set):", ""]
    lines += [f"- {k.replace('|', ', ')}: {v:g} (grid: {data['lambda_tuning'][k]})" for k, v in data["lambdas"].items()]
    lines += ["", f"Made by `python -m cl_course table --seeds {data['seeds']} --out OUT` (OUT: this folder). "
              "Every run is in runs.json beside this file, and running the command again resumes from it.",
              f"The table's runs took {cpu_time / 60:.0f} CPU-minutes (one thread each), not counting the lambda "
              f"choice; the call that wrote this took {data['wall_time_s_this_call'] / 60:.0f} minutes of wall "
              "time, and runs it found in runs.json cost it nothing."]
    return "\n".join(lines) + "\n"
