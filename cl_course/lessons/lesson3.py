"""What lesson 3's notebook calls: the context-specific family on Split MNIST, told the task (task-IL) and asked to
infer it (class-IL), at the run profile's size (lesson 2's profiles); PackNet's capacity, HAT's gates, what each
family stores as the tasks grow; IMM on Permuted MNIST (domain-IL, lesson 1's profile). The logic lives here; the
notebook explains and plots."""
from dataclasses import dataclass, replace

import torch

from .. import metrics, plots, registry
from ..cost import growth_exponent, growth_law, measure
from ..hat import HAT
from ..packnet import PackNet
from ..profiles import profile_config
from ..profiles import split_config as lesson2_config
from ..train import History, load_tasks, run_methods, select_device
from . import lesson2

# The family, in the order the notebook meets them
CONTEXT_METHODS = registry.chosen("separate", "xdg", "xdg-si", "packnet", "hat", "progressive")
# Those that run with the task inferred (xdg-si's regulariser adds nothing to the inference: left out)
INFERRED = registry.chosen("separate", "xdg", "packnet", "hat", "progressive")
# Beside them: plain fine-tuning, and lesson 2's replay (experience replay, the best of it in lesson 2's quick runs)
REFERENCE = registry.chosen("baseline", "er")
TASK_METHODS = (REFERENCE[0], *CONTEXT_METHODS, REFERENCE[1])
INFERRED_METHODS = (REFERENCE[0], *INFERRED, REFERENCE[1])
IMM_METHODS = registry.chosen("baseline", "imm-mean", "imm-mode")
# What the cost table compares: a regulariser, a replay method and the context family
COST_METHODS = registry.chosen("ewc", "er", "separate", "xdg", "packnet", "hat", "progressive")
COST_HIDDEN = (100, 100)  # the cost table's MLP (benchmarks/cost_growth.py's): progressive columns stay small
GATE_ON = 0.5  # a HAT unit attends to a task when its gate at s_max is above this (the gates end near 0 or 1)


def _inferred(scenario, overrides):
    return {"task_inference": scenario != "task"} | overrides  # outside task-IL the context methods infer it


def split_config(scenario, profile=None, **overrides):
    """Lesson 3's RunConfig: lesson 2's Split MNIST in `scenario` at the profile's size, with the context methods'
    task inferred outside task-IL."""
    return lesson2_config(scenario, profile, **_inferred(scenario, overrides))


def start(scenario, profile=None, **overrides):
    """Lesson 3's config and tasks in `scenario`, printed as lesson 2 prints them."""
    return lesson2.start(scenario, profile, **_inferred(scenario, overrides))


@dataclass(frozen=True)
class Trained:
    """A run, with what the notebook shows of its strategy after each task."""
    history: History
    capacity: tuple = ()  # PackNet: after each task, {hidden weight: % of it still free, "all": % of them all}
    gates: tuple = ()     # HAT: per task, per hidden layer, a BoolTensor [units]: the units it attends to


def train(method, config, tasks, strategy=None):
    """Train `method` (or `strategy`, a Strategy built here in its place) on `tasks`; a Trained."""
    capacity, gates = [], []

    def record(model, s, k):
        if isinstance(s, PackNet):
            free = sum(int((o == 0).sum()) for o in s.owner.values())
            capacity.append(s.capacity_left() | {"all": 100.0 * free / sum(o.numel() for o in s.owner.values())})
        if isinstance(s, HAT):
            with torch.no_grad():
                gates.append(tuple((g > GATE_ON).cpu() for g in s.gates(model, s.current, s.s_max)))

    history = run_methods(replace(config, methods=(method,)), tasks, progress=False, on_task=record,
                          make=strategy and (lambda m: strategy))[method]
    return Trained(history, tuple(capacity), tuple(gates))


def packnet_with_share(share, config):
    """PackNet keeping `share` of each hidden layer per task (the registry's keeps 1 / tasks, which fills the network
    exactly): with a larger share the capacity runs out before the last task."""
    return PackNet(share=share, lr=config.lr, batch_size=config.batch_size, seed=config.seed)


def gate_overlap(gates, layer=0):
    """[tasks, tasks]: the intersection over union of the units two tasks attend to in hidden layer `layer`
    (1 on the diagonal; 0: no unit shared)."""
    on = torch.stack([g[layer] for g in gates]).float()  # [tasks, units]
    both = on @ on.T
    either = on.sum(1)[:, None] + on.sum(1)[None, :] - both
    return (both / either.clamp_min(1)).tolist()


def final_average(history):
    return metrics.average_accuracy(history.accuracy_matrix)


def turn_table(task_runs, class_runs):
    """Markdown: each method's task-IL and class-IL final average accuracy, and how often the task was inferred
    right, from this notebook's runs ({method: Trained} per scenario)."""
    rows = ["| method | task-IL (told the task) | class-IL (task inferred) | task inferred right |",
            "|---|---|---|---|"]
    for m in dict.fromkeys((*task_runs, *class_runs)):
        told, inferred = task_runs.get(m), class_runs.get(m)
        right = inferred.history.task_inference if inferred else None
        rows.append(f"| {m} | " + " | ".join([
            f"{final_average(told.history):.1f}" if told else "",
            f"{final_average(inferred.history):.1f}" if inferred else "",
            f"{sum(right.values()) / len(right):.1f}%" if right else ""]) + " |")
    return "\n".join(rows)


def imm_start(profile=None, **overrides):
    """Lesson 1's Permuted MNIST (domain-IL) at the profile's size, for IMM; prints it."""
    config = profile_config(profile, **overrides)
    tasks = load_tasks(config, select_device(config.device))
    print(f"Permuted MNIST, domain-IL: {len(tasks)} tasks, {config.epochs} epochs each on {len(tasks[0].x_train):,} "
          f"training images, {len(tasks[0].x_test):,} test images per task")
    return config, tasks


def costs(methods=COST_METHODS, at=(5, 10, 20), profile=None):
    """{method: {T: cost.TaskCost once the last of T tasks is trained}} of short task-IL Permuted MNIST runs, a run
    per T (a method makes its parts for every task it meets, and the first evaluation meets them all). Short: one
    batch a task, an MLP 784-100-100 (the costs do not depend on how well the tasks are learnt)."""
    out = {m: {} for m in methods}
    for t in at:
        config = profile_config(profile, scenario="task", tasks=t, epochs=1, iterations=1, subset=256,
                                test_subset=64, hidden=COST_HIDDEN, lambdas={"ewc": 1.0}, importance_subset=128)
        data = load_tasks(config, select_device(config.device))
        for m in methods:
            out[m][t] = measure(config, m, data)[-1]
    return out


def cost_table(runs):
    """Markdown: parameters and stored bytes at each number of tasks, and how the two together grow: as T^x between
    the first and the last T, and the law nearest to x."""
    at = list(next(iter(runs.values())))
    rows = ["| method | family | " + " | ".join(f"parameters, T = {t}" for t in at) + " | "
            + " | ".join(f"stored KiB, T = {t}" for t in at) + " | memory grows as T^x | law |",
            "|---|---|" + "---|" * (2 * len(at) + 2)]
    for m, by_t in runs.items():
        x = growth_exponent(at, [by_t[t].total_bytes for t in at])
        rows.append(f"| {m} | {registry.spec(m).family} | " + " | ".join(f"{by_t[t].parameters:,}" for t in at)
                    + " | " + " | ".join(f"{by_t[t].stored_bytes / 1024:,.1f}" for t in at)
                    + f" | {x:.2f} | {growth_law(x)} |")
    return "\n".join(rows)


def plot_capacity(runs):
    """{label: Trained PackNet run}: the capacity left after each task and each task's final accuracy."""
    return plots.plot_capacity({k: [c["all"] for c in r.capacity] for k, r in runs.items()},
                               {k: r.history.accuracy_matrix[-1] for k, r in runs.items()})


def plot_gates(trained, layer=0):
    """A Trained HAT run: the units each task attends to in hidden layer `layer`, and their overlap."""
    return plots.plot_gates([g[layer].tolist() for g in trained.gates], gate_overlap(trained.gates, layer),
                            title=f"HAT, hidden layer {layer + 1}: the units each task attends to, and how much two "
                                  "tasks share")


def plot_turn(task_runs, class_runs):
    """{method: Trained} told the task and with it inferred: the turn as bars."""
    rates = {m: sum(r.history.task_inference.values()) / len(r.history.task_inference)
             for m, r in class_runs.items() if r.history.task_inference}
    return plots.plot_turn({m: final_average(r.history) for m, r in task_runs.items()},
                           {m: final_average(r.history) for m, r in class_runs.items()}, rates)


def plot_merge(runs):
    """{method: Trained} of IMM and the baseline: each task's final accuracy."""
    return plots.plot_merge({m: r.history.accuracy_matrix[-1] for m, r in runs.items()})
