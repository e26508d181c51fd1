"""Cost as the tasks grow: parameters, bytes of stored state and training seconds per task of every method in the
registry, at 5, 10, 20 and 50 Permuted MNIST tasks, with the growth law of each measured (the slope of log cost
against log T between the first and the last T) beside the law its definition gives (issue 27).

    nice -n 10 env OMP_NUM_THREADS=1 .venv/bin/python benchmarks/cost_growth.py --data-root ../shared/data
    .venv/bin/python benchmarks/cost_growth.py --data-root ../shared/data --tasks 5,10 --methods ewc,hat

Short runs: the costs do not depend on how well the tasks are learnt. Task-IL (a head per task), the method's own
scenario where it runs in no other (iCaRL class-IL, IMM domain-IL); the `paper` protocol (each task's importance
from its own training data; HW14's recomputes it over every seen task's test set, a time that grows with T for
its own reason); an MLP 784-100-100 (progressive networks' laterals grow quadratically). Every finished run is kept
in results/cost_growth/runs.json, so a rerun resumes; summary.md and cost_growth.png are written beside it.
"""
import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch
from matplotlib.figure import Figure
from tqdm.auto import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cl_course import RunConfig, plots, registry  # noqa: E402
from cl_course.cost import growth_exponent, growth_law, measure  # noqa: E402
from cl_course.separate import equal_share_width, network_parameters  # noqa: E402
from cl_course.train import load_tasks  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "cost_growth"
TASKS = (5, 10, 20, 50)
LAST = 3  # tasks whose training seconds are averaged: the last ones, where T's effect is largest
LAMBDAS = {"xdg-si": 1.0, "xdg-ewc": 1.0}  # the two without a default; the costs do not depend on it
# the most tasks a method is run at, and why
LIMITS = {"gem": (10, "gem_project solves its quadratic program over all 2^K active sets of the K old tasks, for "
                      "every batch that breaks a constraint: 2^19 least-squares problems a batch at T = 20")}
HIDDEN = (100, 100)
SIZES = (784, *HIDDEN, 10)  # input, hidden layers, a head's outputs
HEAD = (HIDDEN[-1] * 10 + 10) * 4  # bytes of a task-IL head, or of class-IL's ten more outputs a task
GATE = sum(HIDDEN) * 4  # XdG's gate, HAT's embedding: a float per hidden unit and task
BODY = sum(a * b + b for a, b in zip(SIZES, SIZES[1:], strict=False)) * 4  # one single-head model (domain-IL)
# What each definition says grows: (memory law, time law, copies of the model the strategy keeps, what grows).
# Memory is parameters + stored bytes; every task-IL model gains a head a task, and so does every copy of it, so by
# definition one more task adds (1 + copies) heads (+ a gate or an embedding), except where expected_per_task says.
EXPECTED = {
    "baseline": ("constant", "constant", 0, "nothing stored; the model's head per task"),
    "ewc": ("constant", "constant", 2, "one Omega and one anchor (the paper protocol sums the Fishers)"),
    "mas": ("constant", "constant", 2, "one Omega and one anchor"),
    "si": ("constant", "constant", 5, "Omega, anchor, the running path, a zero gradient (no_penalty), the last "
                                      "step's parameters"),
    "rwalk": ("constant", "constant", 7, "SI's five, a running Fisher and a score"),
    "scp": ("constant", "constant", 2, "one Omega and one anchor"),
    "joint": ("constant", "constant", 0, "nothing stored itself, but it retrains on every seen task's data, which "
                                         "the loop holds (linear); a fixed number of batches a task"),
    "online-ewc": ("constant", "constant", 2, "one running Fisher and one anchor"),
    "lwf": ("constant", "linear", 1, "a frozen copy; task-IL distils each batch through every old head"),
    "er": ("constant", "constant", 0, "a memory of a fixed budget"),
    "agem": ("constant", "constant", 0, "a memory of a fixed budget; one reference gradient a batch"),
    "gem": ("constant", "linear", 0, "a memory of a fixed budget; a reference gradient per old task a batch"),
    "dgr": ("constant", "linear", 1, "a VAE, its previous copy, Adam's state and the previous classifier; task-IL "
                                     "replays each generated batch through every old head"),
    "dgr-distill": ("constant", "linear", 1, "as DGR"),
    "icarl": ("constant", "constant", 1, "exemplars of a fixed budget and a frozen copy (class-IL: one head, ten "
                                         "outputs more a task)"),
    "separate": ("constant", "constant", 0, "the shared MLP's parameters split among the tasks: networks narrow as T "
                                            "grows (its total gains the shared MLP's head a task)"),
    "progressive": ("quadratic", "quadratic", 0, "a column per task with laterals from every earlier column; a "
                                                 "task's forward pass runs every earlier column and its laterals"),
    "xdg": ("linear", "constant", 0, "a gate per task (200 floats, tiny)"),
    "xdg-si": ("linear", "constant", 5, "a gate per task (tiny) and SI's state"),
    "xdg-ewc": ("linear", "constant", 2, "a gate per task (tiny) and EWC's state"),
    "imm-mean": ("linear", "linear", 0, "a network per task, kept to be merged; every task's merge averages all"),
    "imm-mode": ("linear", "linear", 0, "a network and a Fisher per task; every task's merge weighs all"),
    "hat": ("linear", "constant", 0, "an embedding per task (200 parameters)"),
    "packnet": ("constant", "constant", 0, "one owner (int64) per hidden weight"),
}
# Why a measured cost differs from its definition, found in the code (a difference without an entry here is
# reported as unexplained)
HEADS_TIME = ("a term linear in the heads: under the penalty every one of the T heads gets a gradient, so Adam "
              "updates all of them every step, and the penalty runs over every parameter tensor (4 + 2T of them), "
              "from the second task of a run on; beside the body's constant cost the exponent falls near 0.5")
MEMORY_VIEWS = ("replay.Memory keeps every sample twice (the per-class tensors and the stacked x), and a class's "
                "tensor is a view x[:m] of what it stored when its task ended, so it keeps that first, larger quota "
                "alive: the bytes grow as the budget times a harmonic sum of quotas (about ln T), not constant")
ALL_HEADS = ("MLP.forward with a head per sample (the memory's batch mixes tasks) computes every head for every "
             "sample, a term linear in T")
FOUND = {
    **dict.fromkeys(("ewc", "mas", "scp", "rwalk", "online-ewc"), HEADS_TIME),
    "si": HEADS_TIME + "; SI also snapshots and integrates every parameter tensor every step",
    "er": MEMORY_VIEWS + "; its time: " + ALL_HEADS,
    "agem": MEMORY_VIEWS + "; its time: " + ALL_HEADS + ", and set_flat_gradient gives every head a gradient, so "
            "Adam updates all of them",
    "gem": "the memory as ER's; gem_project enumerates all 2^K active sets of the K old tasks for every batch "
           "that breaks a constraint, so its time grows exponentially in the old tasks",
    "icarl": "as ER's memory: ICaRL.after_task keeps x[:m], a view of each class's first exemplars, so the "
             "exemplars hold the first quota of every class (3.3 times the budget at T = 50)",
    "joint": "its mixed batches send each sample through its own head, and MLP.forward with a head per sample "
             "computes every head for every sample; the seen tasks' data are also concatenated again every task",
    "xdg-si": "the gate is 800 bytes a task beside the heads and their five copies in SI's state (24 KiB a task) "
              "and a 2 MiB body; the time has SI's term linear in the heads",
    "xdg-ewc": "the gate is 800 bytes a task beside the heads and their two copies in EWC's state (12 KiB a task) "
               "and a 1 MiB body; the time has EWC's term linear in the heads",
    "xdg": "the gate is 800 bytes a task against a 350 KiB model: linear, but the body dominates until T is in "
           "the hundreds (the stored gates alone grow with exponent 1.00)",
    "hat": "the embedding is 800 bytes a task against a 350 KiB model: linear, but the body dominates until T is "
           "in the hundreds",
    "progressive": "running the earlier columns costs 89,610 k + 10,000 k^2 multiply-adds a sample at column k (their "
                   "own layers, then their laterals): the quadratic term passes the linear one only at k = 9, so "
                   "the exponent is between 1 and 2 over 5-50 and nearer 2 over the last two T",
    **dict.fromkeys(("imm-mean", "imm-mode"), "every task's merge is linear in the tasks so far, but small beside "
                                              "the task's training at T <= 50 (a sum of T snapshots of 90,000 "
                                              "parameters, two for mode-IMM)"),
}


def progressive_parameters(tasks):
    column = sum(a * b + b for a, b in zip(SIZES, SIZES[1:], strict=False))
    per_earlier = sum(a * a for a in SIZES[1:-1])  # V's weights: a block of a x a per earlier column
    lateral = sum(1 + a + a * b for a, b in zip(SIZES[1:-1], SIZES[2:], strict=False))  # alpha, V's bias, U
    return sum(column + (k * per_earlier + lateral if k else 0) for k in range(tasks))


def separate_parameters(tasks):
    shared = BODY // 4 + (tasks - 1) * HEAD // 4  # the task-IL MLP's parameters, a head per task
    width = equal_share_width(shared, tasks, SIZES[0], len(HIDDEN), SIZES[-1])
    return tasks * network_parameters(SIZES[0], width, len(HIDDEN), SIZES[-1])


def expected_per_task(method, t1, t2):
    """The bytes one more task adds between t1 and t2 tasks, by the method's definition."""
    if method == "progressive":
        return 4 * (progressive_parameters(t2) - progressive_parameters(t1)) / (t2 - t1)
    if method == "separate":
        return 4 * (separate_parameters(t2) - separate_parameters(t1)) / (t2 - t1)
    if method == "imm-mean":  # domain-IL: one head; a snapshot of the model per task
        return BODY
    if method == "imm-mode":
        return 2 * BODY
    return (1 + EXPECTED[method][2]) * HEAD + (GATE if method.startswith("xdg") or method == "hat" else 0)


def config_of(method, tasks, args):
    """The method's run at `tasks` tasks, and why it is not task-IL (None when it is)."""
    settings = dict(methods=(method,), benchmark="permuted-mnist", tasks=tasks, protocol=args.protocol,
                    hidden=HIDDEN, epochs=1, iterations=args.iterations, subset=args.subset,
                    test_subset=args.test_subset, importance_subset=args.importance_subset,
                    importance_batch_size=args.importance_subset, lr=1e-3, lambdas=LAMBDAS,
                    generator_hidden=(100,), generator_latent=10, device="cpu", data_root=args.data_root)
    try:
        return RunConfig(scenario="task", **settings).check(), None
    except ValueError as refused:
        scenario = registry.spec(method).scenarios[0]
        return RunConfig(scenario=scenario, **settings).check(), str(refused)


def run_cell(method, tasks, args, loaded):
    config, refused = config_of(method, tasks, args)
    key = (config.the_scenario(), tasks)
    if key not in loaded:
        loaded[key] = load_tasks(config, torch.device("cpu"))
    start = time.perf_counter()
    costs = measure(config, method, loaded[key])
    return {"method": method, "tasks": tasks, "scenario": config.the_scenario(), "refused": refused,
            "wall_time_s": time.perf_counter() - start, "costs": [asdict(c) for c in costs]}


def size(n):
    for unit, scale in (("GiB", 2 ** 30), ("MiB", 2 ** 20), ("KiB", 2 ** 10)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n} B"


def rows_of(runs, method):
    """[(T, its costs after the last task, the mean seconds of the last tasks)] for `method`, by T."""
    out = []
    for run in sorted((r for r in runs.values() if r["method"] == method), key=lambda r: r["tasks"]):
        last = run["costs"][-1]
        seconds = [c["seconds"] for c in run["costs"][-LAST:]]
        out.append((run["tasks"], last, sum(seconds) / len(seconds)))
    return out


def total(cost):
    return cost["parameter_bytes"] + sum(cost["stored"].values())


def laws_of(rows):
    """{name: value}: the exponents of memory, stored bytes and time over every T and over the last two, and the
    bytes one more task adds between the last two T."""
    ts = [t for t, _, _ in rows]
    memory, stored, seconds = ([total(c) for _, c, _ in rows], [sum(c["stored"].values()) for _, c, _ in rows],
                               [s for _, _, s in rows])
    return {"memory": growth_exponent(ts, memory), "memory late": growth_exponent(ts[-2:], memory[-2:]),
            "stored": growth_exponent(ts, stored), "per task": (memory[-1] - memory[-2]) / (ts[-1] - ts[-2]),
            "time": growth_exponent(ts, seconds), "time late": growth_exponent(ts[-2:], seconds[-2:])}


def differences(method, rows, laws):
    """What differs from the method's definition: its memory's law or bytes per task (beyond 5%), its time's law."""
    want_memory, want_time, _, _ = EXPECTED[method]
    per_task = expected_per_task(method, rows[-2][0], rows[-1][0])
    return [name for name, differs in (
        ("memory", growth_law(laws["memory"]) != want_memory),
        ("bytes/task", abs(laws["per task"] - per_task) > 0.05 * per_task),
        ("time", growth_law(laws["time"]) != want_time)) if differs]


def fmt(exponent):
    return "-" if exponent is None else f"{exponent:.2f}"


def summary_markdown(runs, methods, skipped, minutes):
    lines = ["# Cost as the tasks grow", "",
             "Permuted MNIST, short runs (see cost_growth.py's docstring and `settings` in runs.json). Memory is the "
             "model's parameter bytes plus the strategy's stored bytes after the last task; training seconds per "
             f"task are the mean over the last {LAST} tasks (a task's training, from its prepare_model to the end "
             "of its finish_task, plus its after_task; the loop's evaluations left out: cl_course/cost.py).", "",
             "| method | family | scenario | parameters T=" + " / ".join(map(str, TASKS)) +
             " | stored T=" + " / ".join(map(str, TASKS)) + " | s/task T=" + " / ".join(map(str, TASKS)) +
             " | largest stored at the last T |", "|---|---|---|---|---|---|---|"]
    for m in methods:
        rows = rows_of(runs, m)
        if not rows:
            continue
        last = rows[-1][1]["stored"]
        largest = ", ".join(f"{k} {size(v)}" for k, v in sorted(last.items(), key=lambda kv: -kv[1])[:3]) or "-"
        scenario = next(r["scenario"] for r in runs.values() if r["method"] == m)
        lines.append(f"| {m} | {registry.spec(m).family} | {scenario} | "
                     + " / ".join(f"{c['parameters']:,}" for _, c, _ in rows) + " | "
                     + " / ".join(size(sum(c["stored"].values())) for _, c, _ in rows) + " | "
                     + " / ".join(f"{s:.3f}" for _, _, s in rows) + f" | {largest} |")
    lines += ["", "## Growth laws, measured and expected", "",
              "Exponent: the slope of log(cost) against log(T) between the first and the last T (cost ~ T^slope; in "
              "brackets between the last two T, nearer the law's asymptote); its law is the nearest of constant (0), "
              "linear (1), quadratic (2). Memory: parameters + stored bytes; stored: the strategy's state alone. "
              "Bytes/task: what one more task adds between the last two T, measured and by the method's definition "
              f"(a task-IL head is {HEAD:,} bytes, and every copy of the model the strategy keeps gains one too).", "",
              "| method | memory exponent | law | expected | stored exponent | bytes/task | by definition | "
              "time exponent | law | expected | differs | what grows, by definition |", "|---" * 12 + "|"]
    flagged = []
    for m in methods:
        rows = rows_of(runs, m)
        if len(rows) < 2:
            continue
        laws, (want_memory, want_time, _, why) = laws_of(rows), EXPECTED[m]
        differs = differences(m, rows, laws)
        flagged += [(m, differs)] if differs else []
        lines.append(f"| {m} | {fmt(laws['memory'])} ({fmt(laws['memory late'])}) | {growth_law(laws['memory'])} | "
                     f"{want_memory} | {fmt(laws['stored'])} | {size(round(laws['per task']))} | "
                     f"{size(round(expected_per_task(m, rows[-2][0], rows[-1][0])))} | {fmt(laws['time'])} "
                     f"({fmt(laws['time late'])}) | {growth_law(laws['time'])} | {want_time} | "
                     f"{'**' + ', '.join(differs) + '**' if differs else ''} | {why} |")
    lines += ["", "Why the measurements differ from the definitions:", ""]
    lines += [f"- {m} ({', '.join(differs)}): {FOUND.get(m, 'unexplained')}." for m, differs in flagged]
    lines += [""] + [f"- {line}" for line in skipped] + [
        "", f"Figure: [cost_growth.png](cost_growth.png). {len(runs)} runs, {minutes:.1f} minutes of run time "
            "(runs.json keeps each run's).", ""]
    return "\n".join(lines)


def plot(runs, methods, path):
    fig = Figure(figsize=(11, 4.6), layout="constrained")
    memory, seconds = fig.subplots(1, 2)
    for m in methods:
        rows = rows_of(runs, m)
        if not rows:
            continue
        ts = [t for t, _, _ in rows]
        style = dict(color=plots.method_colour(m), marker=plots.method_marker(m), label=m)
        memory.plot(ts, [total(c) / 2 ** 20 for _, c, _ in rows], **style)
        seconds.plot(ts, [s for _, _, s in rows], **style)
    for ax, label in ((memory, "parameters + stored state (MiB)"), (seconds, f"training s per task (last {LAST})")):
        ax.set(xscale="log", yscale="log", xlabel="tasks T", ylabel=label)
        ax.set_xticks(TASKS, [str(t) for t in TASKS])
        ax.set_xticks([], minor=True)
        low = min(line.get_ydata().min() for line in ax.get_lines())
        for power, style in ((1, "--"), (2, ":")):  # the laws' slopes, from the lowest point at the first T
            ax.plot(TASKS, [low * (t / TASKS[0]) ** power for t in TASKS], style, color="0.6", lw=1)
            ax.annotate(f"T^{power}", (TASKS[-1], low * (TASKS[-1] / TASKS[0]) ** power), color="0.4", fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
    memory.set_title("memory after the last task")
    seconds.set_title("time per task")
    fig.legend(*memory.get_legend_handles_labels(), loc="outside right center", fontsize=8)
    fig.savefig(path, dpi=120)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=None, help="a torchvision MNIST root (default $CL_COURSE_DATA)")
    parser.add_argument("--tasks", default=",".join(map(str, TASKS)), help="comma-separated T (default %(default)s)")
    parser.add_argument("--methods", default=",".join(registry.names()), help="comma-separated (default: all)")
    parser.add_argument("--protocol", choices=("paper", "hw14"), default="paper")
    parser.add_argument("--subset", type=int, default=256, help="training images per task (default %(default)s)")
    parser.add_argument("--test-subset", type=int, default=100, help="test images per task (default %(default)s)")
    parser.add_argument("--iterations", type=int, default=10, help="batches per task (default %(default)s)")
    parser.add_argument("--importance-subset", type=int, default=128,
                        help="images per importance (default %(default)s)")
    args = parser.parse_args()
    try:
        tasks = tuple(sorted(int(t) for t in args.tasks.split(",")))
        methods = tuple(m for m in registry.names() if m in args.methods.split(","))
        for m in args.methods.split(","):
            registry.spec(m)
        for m in methods:  # a bad setting (--subset 0): one line now, not a traceback mid-run
            config_of(m, tasks[0], args)
    except ValueError as bad:
        parser.error(str(bad))
    if len(tasks) < 2 or tasks[0] < 2:
        parser.error(f"--tasks needs two or more numbers of tasks of at least 2, got {args.tasks}")
    torch.set_num_threads(1)
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / "runs.json"
    runs = json.loads(path.read_text()) if path.exists() else {}
    settings = {k: getattr(args, k) for k in ("protocol", "subset", "test_subset", "iterations", "importance_subset")}
    skipped, cells = [], []
    for m in methods:
        most, why = LIMITS.get(m, (max(tasks), None))
        if why and max(tasks) > most:
            skipped.append(f"{m}: run at T <= {most} only: {why}")
        cells += [(m, t) for t in tasks if t <= most]
        config, refused = config_of(m, tasks[0], args)
        if refused:
            skipped.append(f"{m}: not task-IL ({refused.split(':')[0]}): run in {config.the_scenario()}-IL")
    for line in skipped:
        print(line)
    loaded = {}
    done = {k for k, r in runs.items() if r["settings"] == settings}  # a run of other settings is run again
    todo = sorted((c for c in cells if f"{c[0]}@{c[1]}" not in done), key=lambda c: (c[1], methods.index(c[0])))
    for m, t in tqdm(todo, desc="cost growth"):
        runs[f"{m}@{t}"] = run_cell(m, t, args, loaded) | {"settings": settings}
        path.write_text(json.dumps(runs, indent=1))
    shown = {k: r for k, r in runs.items() if k in done | {f'{m}@{t}' for m, t in todo} and r["method"] in methods
             and r["tasks"] in tasks}
    minutes = sum(r["wall_time_s"] for r in shown.values()) / 60
    (OUT / "summary.md").write_text(summary_markdown(shown, methods, skipped, minutes))
    plot(shown, methods, OUT / "cost_growth.png")
    print(f"wrote {OUT}/summary.md and cost_growth.png ({minutes:.1f} minutes of runs)")


if __name__ == "__main__":
    main()
