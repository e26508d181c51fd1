"""The replay memory at equal budgets: experience replay in class-IL Split MNIST with its memory filled by
random, reservoir or herding selection, for several total budgets K, over seeds (final average accuracy).

The notebook runs it at lesson 2's quick profile, in its own process; benchmarks/memory_budget.py runs it in
van de Ven & Tolias's full protocol, with worker processes and every finished run kept in a runs.json.
"""
import json
import time
from dataclasses import dataclass, replace
from importlib.resources import files

from tqdm.auto import tqdm

from . import EDITION
from .table import Cell, final_average, mean_sem, run_cell

BUDGETS = (100, 200, 500, 1000, 2000)
SELECTIONS = ("random", "reservoir", "herding")
SEEDS = (1, 2, 3)


@dataclass(frozen=True)
class BudgetSweep:
    """Final average accuracy (%) after the last task, one value per seed, by memory selection and budget."""
    profile: str       # what `base` was: "quick" (lesson 2's), "full" (van de Ven & Tolias's protocol)...
    budgets: tuple     # K, the memory's total size in samples
    seeds: tuple
    er: dict           # selection -> {K: (accuracy of each seed)}: experience replay
    icarl: dict        # K -> (accuracy of each seed): iCaRL (herding, its own classifier), where it was run
    wall_time_s: float  # of the call that made it (runs found in a runs.json cost nothing)

    def mean_sem(self, selection):
        """[(mean, SEM)] of `selection` over the seeds, one per budget."""
        return [mean_sem(self.er[selection][k]) for k in self.budgets]

    def icarl_mean_sem(self):
        """{K: (mean, SEM)} of iCaRL over the seeds."""
        return {k: mean_sem(v) for k, v in self.icarl.items()}

    @classmethod
    def from_json(cls, data):
        """The sweep from what json.loads gives back of dataclasses.asdict(sweep): budgets as text keys, lists."""
        return cls(data["profile"], tuple(data["budgets"]), tuple(data["seeds"]),
                   {s: {int(k): tuple(v) for k, v in by_k.items()} for s, by_k in data["er"].items()},
                   {int(k): tuple(v) for k, v in data["icarl"].items()}, data["wall_time_s"])


def cells_of(budgets, selections, seeds, icarl_budgets=()):
    """The runs of a sweep: ER at every (selection, budget, seed), iCaRL at every (budget in icarl_budgets, seed)."""
    er = [Cell("er", "class", seed, 0.0, False, budget=k, selection=s)
          for seed in seeds for s in selections for k in budgets]
    return er + [Cell("icarl", "class", seed, 0.0, False, budget=k) for seed in seeds for k in icarl_budgets]


def run_here(cells, base):
    """Each cell's result, run in this process (its threads and device), loading each seed's tasks once."""
    from .train import load_tasks, select_device
    results, tasks = {}, {}
    for cell in tqdm(cells, desc="memory budget", leave=False):
        if cell.seed not in tasks:
            config = cell.config(base)
            tasks = {cell.seed: load_tasks(config, select_device(config.device))}
        results[cell] = run_cell(cell, base, tasks[cell.seed])
    return results


def sweep(base, profile, budgets=BUDGETS, selections=SELECTIONS, seeds=SEEDS, icarl_budgets=(), runs=None,
          workers=1):
    """ER (and iCaRL at `icarl_budgets`) in class-IL on top of `base` (a Split MNIST RunConfig). runs: a
    table.Runs to resume from and keep every run in, with `workers` processes of one thread; None: run here."""
    start = time.perf_counter()
    cells = cells_of(budgets, selections, seeds, icarl_budgets)
    results = run_here(cells, base) if runs is None else runs.run(cells, base, workers, desc="memory budget")
    accuracy = {c: final_average(r) for c, r in results.items()}
    er = {s: {k: tuple(accuracy[Cell("er", "class", seed, 0.0, False, budget=k, selection=s)] for seed in seeds)
              for k in budgets} for s in selections}
    icarl = {k: tuple(accuracy[Cell("icarl", "class", seed, 0.0, False, budget=k)] for seed in seeds)
             for k in icarl_budgets}
    return BudgetSweep(profile, tuple(budgets), tuple(seeds), er, icarl, time.perf_counter() - start)


def shipped(budgets):
    """The shipped quick-profile sweep (benchmarks/memory_budget.py --profile quick, seeds 1-3) at `budgets`."""
    data = json.loads(files("cl_course").joinpath("precomputed", "memory_budget_quick.json").read_text())
    every = BudgetSweep.from_json(data["sweep"])
    return replace(every, budgets=tuple(budgets), er={s: {k: v[k] for k in budgets} for s, v in every.er.items()})


def lesson_sweep(base, profile, budgets):
    """The notebook's sweep: run here, or in the student edition, whose memories are the notebook's to write
    (the library's herding and reservoir memories are not in it), the shipped quick-profile sweep, said so."""
    if EDITION == "instructor":
        return sweep(base, profile, budgets)
    print("The student edition does not run this sweep (its memories are the library's, whose pieces you write "
          "above): the figure and the lines below are the shipped quick-profile sweep, seeds 1-3.")
    return shipped(budgets)


def summary(sweep):
    """What the sweep shows, each sentence computed from its numbers: the ranking of the selections at every
    budget (means over seeds, with the SEM), and how much a larger memory and the best rule add."""
    means = {s: [m for m, _ in sweep.mean_sem(s)] for s in sweep.er}
    lines = []
    for i, k in enumerate(sweep.budgets):
        ranked = sorted(sweep.er, key=lambda s, i=i: -means[s][i])
        lines.append(f"K = {k:,}: " + ", ".join(
            f"{s} {sweep.mean_sem(s)[i][0]:.1f} +- {sweep.mean_sem(s)[i][1]:.1f}" for s in ranked))
    first, last = sweep.budgets[0], sweep.budgets[-1]
    spread = [max(means[s][i] for s in means) - min(means[s][i] for s in means) for i in (0, -1)]
    best = [max(means, key=lambda s, i=i: means[s][i]) for i in (0, -1)]
    lines.append(f"From K = {first:,} to K = {last:,} the best rule's accuracy goes from {means[best[0]][0]:.1f} "
                 f"({best[0]}) to {means[best[1]][-1]:.1f} ({best[1]}); the gap between the best and the worst rule "
                 f"goes from {spread[0]:.1f} to {spread[1]:.1f} points "
                 f"({'narrower' if spread[1] < spread[0] else 'not narrower'} with the larger memory). "
                 f"With {len(sweep.seeds)} seeds, a difference within about two SEMs may be chance.")
    return "\n".join(lines)
