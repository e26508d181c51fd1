"""What lesson 3's notebook calls: the context-specific family on Split MNIST, told the task (task-IL) and asked to
infer it (class-IL), at the run profile's size (lesson 2's profiles); PackNet's capacity, HAT's gates, what each
family stores as the tasks grow; IMM on Permuted MNIST (domain-IL, lesson 1's profile). The logic lives here; the
notebook explains and plots."""
from dataclasses import dataclass, replace

import torch

from .. import EDITION, metrics, plots, registry
from ..cost import growth_exponent, growth_law, measure
from ..hat import HAT
from ..packnet import PackNet
from ..profiles import profile_config
from ..profiles import split_config as lesson2_config
from ..train import History, load_tasks, run_methods, select_device
from ..teaching.blanks import BLANKS, blanks_of
from ..teaching.selfcheck import NotWrittenError
from . import lesson2
from .lesson2 import final_average
from .notebook import checked

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


def missing(method, config, given):
    """The blanks `method` calls in `config` that the notebook did not give (`given`: their names): the student
    edition cannot train it without them. Inference (lowest_entropy) is called only where the task is inferred."""
    return [n for n in blanks_of(method) if n not in given and (n != "lowest_entropy" or config.task_inference)]


def not_here(method, needs):
    """Say, in one line, why the student edition does not train `method`, and what to pass."""
    hw14 = [n for n in needs if BLANKS[n].lesson == "hw14"]
    print(f"{method} is not trained here: the student edition of the package leaves {', '.join(needs)} to you"
          + (" (you wrote them in HW14)" if hw14 else "") + f"; pass {', '.join(f'{n}={n}' for n in needs)} to "
          "train it.")


def train(method, config, tasks, strategy=None, **answers):
    """Train `method` (or `strategy`, a Strategy built here in its place) on `tasks` with the notebook's functions
    (`answers`, by library name, e.g. prune_mask=prune_mask), each self-checked first; a Trained, or None when the
    student edition cannot train it (it says why)."""
    needs = missing(method, config, {*answers, *(strategy.answers if strategy else ())})
    if EDITION == "student" and needs:
        return not_here(method, needs)
    checked(method, answers, tasks[0].x_train.device)
    capacity, gates = [], []

    def record(model, s, k):
        if isinstance(s, PackNet):
            free = sum(int((o == 0).sum()) for o in s.owner.values())
            capacity.append(s.capacity_left() | {"all": 100.0 * free / sum(o.numel() for o in s.owner.values())})
        if isinstance(s, HAT):
            with torch.no_grad():
                gates.append(tuple((g > GATE_ON).cpu() for g in s.gates(model, s.current, s.s_max)))

    try:
        history = run_methods(replace(config, methods=(method,)), tasks, progress=False, on_task=record,
                              answers=answers or None, make=strategy and (lambda m: strategy))[method]
    except NotImplementedError as e:
        why = str(e) or "a cell above still raises NotImplementedError"
        raise NotWrittenError(f"{method} cannot train yet: {why}") from None
    return Trained(history, tuple(capacity), tuple(gates))


def packnet_with_share(share, config, **answers):
    """PackNet keeping `share` of each hidden layer per task (the registry's keeps 1 / tasks, which fills the network
    exactly): with a larger share the capacity runs out before the last task. `answers`: as train's."""
    checked("packnet", answers, "cpu")
    return PackNet(share=share, lr=config.lr, batch_size=config.batch_size, seed=config.seed, answers=answers or None)


def gate_overlap(gates, layer=0):
    """[tasks, tasks]: the intersection over union of the units two tasks attend to in hidden layer `layer`
    (1 on the diagonal; 0: no unit shared)."""
    on = torch.stack([g[layer] for g in gates]).float()  # [tasks, units]
    both = on @ on.T
    either = on.sum(1)[:, None] + on.sum(1)[None, :] - both
    return (both / either.clamp_min(1)).tolist()


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


def costs(methods=COST_METHODS, at=(5, 10, 20), profile=None, **answers):
    """{method: {T: cost.TaskCost once the last of T tasks is trained}} of short task-IL Permuted MNIST runs, a run
    per T (a method makes its parts for every task it meets, and the first evaluation meets them all). Short: one
    batch a task, an MLP 784-100-100 (the costs do not depend on how well the tasks are learnt). `answers`: the
    notebook's functions, as train's; the student edition leaves out a method it lacks one for, and says so."""
    out = {}
    for t in at:
        config = profile_config(profile, scenario="task", tasks=t, epochs=1, iterations=1, subset=256,
                                test_subset=64, hidden=COST_HIDDEN, lambdas={"ewc": 1.0}, importance_subset=128)
        data = load_tasks(config, select_device(config.device))
        for m in methods:
            needs = missing(m, config, answers)
            if EDITION == "student" and needs:
                if t == at[0]:
                    not_here(m, needs)
                continue
            used = {n: f for n, f in answers.items() if n in blanks_of(m)}
            out.setdefault(m, {})[t] = measure(config, m, data, answers=used or None)[-1]
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
             for m, r in class_runs.items() if r and r.history.task_inference}
    return plots.plot_turn({m: final_average(r.history) for m, r in task_runs.items() if r},
                           {m: final_average(r.history) for m, r in class_runs.items() if r}, rates)


def plot_merge(runs):
    """{method: Trained} of IMM and the baseline: each task's final accuracy."""
    return plots.plot_merge({m: r.history.accuracy_matrix[-1] for m, r in runs.items()})


NAMES = {"baseline": "the baseline", "separate": "separate networks", "xdg": "XdG", "xdg-si": "XdG with SI",
         "packnet": "PackNet", "hat": "HAT", "progressive": "progressive networks", "er": "ER",
         "imm-mean": "mean-IMM", "imm-mode": "mode-IMM"}
FROZEN = registry.chosen("separate", "packnet", "progressive")  # nothing later can change an old task's answers
BWT_MARGIN, SEPARATE_MARGIN, TURN = 0.5, 2.0, 20.0  # the quick profile's bounds (benchmarks/lesson3_quick_profile.py)


def _finals(runs):
    return {m: final_average(r.history) for m, r in runs.items() if r}


def _bwt(runs):
    return {m: metrics.backward_transfer(r.history.accuracy_matrix) for m, r in runs.items() if r}


def claims(task_runs, class_runs, imm_runs=None):
    """The conclusions the notebook draws, each built from this notebook's runs ({method: Trained} told the task,
    with it inferred, and IMM's) and stated only about the methods that trained; a lesson2.Claim's `holds` says
    whether this run bears it out. The quick profile bears out the first four for seeds 1, 2 and 3
    (benchmarks/lesson3_quick_profile.py)."""
    out, told, bwt = [], _finals(task_runs), _bwt(task_runs)
    context = [m for m in CONTEXT_METHODS if m in told]
    if context:
        worst = max(context, key=lambda m: abs(bwt[m]))
        base = f"; the baseline's is {bwt['baseline']:+.2f}" if "baseline" in bwt else ""
        out.append(lesson2.Claim("task", f"Told the task, no context method forgets: every backward transfer is within "
                                         f"{BWT_MARGIN} points of 0 (the farthest, {NAMES[worst]}'s, "
                                         f"{bwt[worst]:+.2f}{base}).", abs(bwt[worst]) <= BWT_MARGIN))
        frozen = [m for m in FROZEN if m in bwt]
        if frozen:
            out.append(lesson2.Claim("task", f"The frozen ones ({', '.join(NAMES[m] for m in frozen)}) forget nothing "
                                             "at all: their backward transfer is exactly 0.",
                                     all(bwt[m] == 0 for m in frozen)))
    if "separate" in told and len(context) > 1:
        lowest = min(context, key=told.get)
        out.append(lesson2.Claim("task", f"Every context method ends within {SEPARATE_MARGIN:g} points of separate "
                                         f"networks' {told['separate']:.1f}% (the lowest: {NAMES[lowest]}, "
                                         f"{told[lowest]:.1f}%).", told[lowest] >= told["separate"] - SEPARATE_MARGIN))
    inferred = {m: v for m, v in _finals(class_runs).items() if m in INFERRED}
    if inferred and all(m in told for m in inferred):
        least = min(inferred, key=lambda m: told[m] - inferred[m])
        out.append(lesson2.Claim("class", f"Asked to infer the task (class-IL), every context method falls at least "
                                          f"{TURN:g} points below its task-IL accuracy (the smallest fall: "
                                          f"{NAMES[least]}, {told[least]:.1f}% to {inferred[least]:.1f}%).",
                                 told[least] - inferred[least] >= TURN))
    if inferred and class_runs.get("er"):
        er, best = final_average(class_runs["er"].history), max(inferred, key=inferred.get)
        out.append(lesson2.Claim("class", f"ER, which stores samples instead of separating parameters, ends at "
                                          f"{er:.1f}% in class-IL, at least {TURN:g} points above every context method "
                                          f"with the task inferred (the best: {NAMES[best]}, {inferred[best]:.1f}%).",
                                 er >= inferred[best] + TURN))
    merged = _finals(imm_runs or {})
    if "imm-mean" in merged and "imm-mode" in merged:
        out.append(lesson2.Claim("domain", f"Mode-IMM ({merged['imm-mode']:.1f}%) ends above mean-IMM "
                                           f"({merged['imm-mean']:.1f}%): weighing each parameter by each network's "
                                           "Fisher keeps what each task relies on.",
                                 merged["imm-mode"] > merged["imm-mean"]))
    if "baseline" in merged and len(merged) > 1:
        merges = {m: v for m, v in merged.items() if m != "baseline"}
        out.append(lesson2.Claim("domain", "Every merge ends above the last network alone ("
                                           + ", ".join(f"{NAMES[m]} {v:.1f}%" for m, v in merges.items())
                                           + f" against {merged['baseline']:.1f}%).",
                                 min(merges.values()) > merged["baseline"]))
    return out


def conclusions(task_runs, class_runs, imm_runs=None):
    """The conclusions as markdown, one line per claim, each marked with whether this run bears it out."""
    lines = []
    for c in claims(task_runs, class_runs, imm_runs):
        mark = "holds in your run" if c.holds else "**does not hold in your run**: look at the figures above"
        lines.append(f"- {c.sentence} ({mark})")
    return "\n".join(lines) or "Train the methods above first: the conclusions are drawn from your runs."


def summary(runs, *methods):
    """One line per method of `runs` ({method: Trained}) that trained: its final average accuracy and backward
    transfer, and its final accuracy on each task."""
    return "\n".join(f"{m}: final average {final_average(runs[m].history):.1f}%, BWT "
                     f"{metrics.backward_transfer(runs[m].history.accuracy_matrix):+.2f}; per task "
                     + ", ".join(f"{a:.1f}" for a in runs[m].history.accuracy_matrix[-1])
                     for m in methods if runs.get(m))


def histories(runs, *methods):
    """{method: History} of those of `methods` that `runs` holds, for plots.plot_forgetting_curves."""
    return {m: runs[m].history for m in methods if runs.get(m)}
