"""What lesson 2's notebook calls: Split MNIST in one scenario at the run profile's size, training a
library method or a strategy class written in the notebook, confusion matrices after each task, and the
closing comparison beside the published table and the shipped full run. The logic lives here; the
notebook explains and plots."""
import json
import math
from dataclasses import dataclass, replace
from importlib.resources import files

import torch

from .. import EDITION, metrics, plots, registry
from ..data import SCENARIOS, data_root
from ..profiles import profile_name, split_config
from ..table import LATER, PUBLISHED
from ..teaching.blanks import BLANKS, blanks_of
from ..teaching.selfcheck import NotWrittenError
from ..train import History, load_tasks, run_methods, select_device
from .notebook import checked

# The lesson's methods, in the order the notebook meets them; EWC is the paper protocol's (summed Fishers, one
# anchor), which the shipped table runs as online-ewc with gamma 1
METHODS = registry.chosen("baseline", "ewc", "si", "lwf", "er", "agem", "dgr", "icarl")
SHIPPED_NAME = {"ewc": "online-ewc"}
# How a class written in the notebook is built: with the options the library gives its own (methods.make_strategy)
BUILD = {"LwF": lambda cls, config: cls(temperature=config.temperature),
         "ExperienceReplay": lambda cls, config: cls(budget=config.memory_budget),
         "AGEM": lambda cls, config: cls(budget=config.memory_budget)}


def start(scenario, profile=None, **overrides):
    """The profile's Split MNIST config and tasks in `scenario` (task, domain or class); prints both."""
    config = split_config(scenario, profile, **overrides)
    device = select_device(config.device)
    tasks = load_tasks(config, device)
    heads = {"task": f"{len(tasks)} heads of 2", "domain": "one head of 2", "class": "one head of 10"}[scenario]
    print(f"{scenario}-IL, profile {profile_name(profile)}: {len(tasks)} tasks ({', '.join(t.name for t in tasks)}), "
          f"{heads}; {config.iterations} batches of {config.batch_size} per task from {len(tasks[0].x_train):,} "
          f"training images, {len(tasks[0].x_test):,} test images per task, Adam lr {config.lr:g}, on {device} "
          f"(data: {data_root(config.data_root)})")
    return config, tasks


def blank_of_class(method):
    """The name of the strategy blank that stands in for `method` (e.g. er -> ExperienceReplay)."""
    return next(n for n, b in BLANKS.items() if b.lesson == "lesson2" and method in b.methods and n in BUILD)


def train(method, config, tasks, strategy=None, on_task=None, **answers):
    """Train `method` on `tasks` and return its train.History, or None when the student edition cannot
    train it (EWC and SI without the HW14 functions). strategy: the notebook's class that stands in for the
    library's (LwF, ExperienceReplay, AGEM); answers: the notebook's functions by library name. Each is
    self-checked on the training device first, so a wrong one stops here, not after training."""
    device = tasks[0].x_train.device
    needs = [n for n in blanks_of(method) if BLANKS[n].lesson == "hw14"]
    if EDITION == "student" and needs and not answers:
        print(f"{method} is not trained here: it needs {', '.join(needs)}, which you wrote in HW14 and which the "
              f"student edition of the package leaves to you; pass them ({', '.join(f'{n}={n}' for n in needs)}) "
              "to train it. Its row below comes from the shipped full run.")
        return None
    functions = dict(answers)
    if strategy is not None:
        functions[blank_of_class(method)] = strategy
    checked(method, functions, device)
    make = (lambda m: BUILD[blank_of_class(m)](strategy, config)) if strategy is not None else None
    try:
        return run_methods(replace(config, methods=(method,)), tasks, answers=answers or None, make=make,
                           on_task=on_task)[method]
    except NotImplementedError as e:
        why = str(e) or "a cell above still raises NotImplementedError"
        raise NotWrittenError(f"{method} cannot train yet: {why}") from None


def lwf_old_classes_only(config, tasks):
    """LwF in class-IL as van de Ven & Tolias's code runs it (config.lwf_seen_classes): trained here, or in the
    student edition, whose LwF is the notebook's, the shipped quick-profile run of seed 1, said so."""
    if EDITION == "instructor":
        return train("lwf", replace(config, lwf_seen_classes=True), tasks)
    print("The student edition does not train this variant (it is the library's LwF, whose pieces you write above): "
          "below, the shipped quick-profile run of seed 1 (benchmarks/lwf_variant.py).")
    shipped = json.loads(files("cl_course").joinpath("precomputed", "lwf_seen_classes_quick.json").read_text())
    return History(accuracy_matrix=shipped["accuracy_matrix"]["1"])


@torch.no_grad()
def confusion_matrix(model, strategy, tasks):
    """[C, C] counts over every task's test set: row = true label, column = predicted (strategy.predict)."""
    model.eval()
    classes = model.heads[0].out_features
    counts = torch.zeros(classes, classes, dtype=torch.long, device=tasks[0].x_test.device)
    for task in tasks:
        model.use_head(task.head)
        predicted = strategy.predict(model, task.x_test, task).argmax(1)
        counts += torch.bincount(task.y_test * classes + predicted, minlength=classes * classes).view(classes, classes)
    model.train()
    return counts.cpu()


def confusion_after_each_task(method, config, tasks, strategy=None, **answers):
    """(History, [confusion_matrix after task 1, ..., after the last task]) of a run."""
    matrices = []
    history = train(method, config, tasks, strategy,
                    on_task=lambda model, s, k: matrices.append(confusion_matrix(model, s, tasks)), **answers)
    return history, matrices


def newest_share(matrices, tasks):
    """After each task k: the share (%) of all test images predicted as one of task k's classes."""
    return [100.0 * float(m[:, list(t.classes)].sum() / m.sum()) for m, t in zip(matrices, tasks, strict=False)]


def per_task_summary(runs, *methods):
    """One line per method of `runs` ({method: History}): its final accuracy on each task, where forgetting (or
    not learning) shows task by task."""
    return "\n".join(f"{m}: final accuracy per task " + ", ".join(f"task {j + 1} {a:.1f}%" for j, a in
                                                             enumerate(runs[m].accuracy_matrix[-1]))
                     for m in methods if runs.get(m))


def shipped_table():
    """The shipped full run of `python -m cl_course table` (3 seeds, 2,000 iterations per task)."""
    return json.loads(files("cl_course").joinpath("precomputed", "split_mnist_table.json").read_text())


def trained(runs, *methods):
    """{method: History} of those of `methods` that `runs` (one scenario's) holds a run of, for a figure: a cell
    above that has not trained yet leaves its method out rather than stopping the figure."""
    return {m: runs[m] for m in methods if runs.get(m)}


def final_average(history):
    return metrics.average_accuracy(history.accuracy_matrix)


def comparison_markdown(results, profile):
    """results: {scenario: {method: History or None}}. One row per method: per scenario, this notebook's
    final average accuracy, the shipped full run's (mean +- SEM of 3 seeds) and van de Ven & Tolias's."""
    shipped = shipped_table()
    header = " | ".join(f"{s}-IL: this notebook | full run | published" for s in SCENARIOS)
    rows = [f"Final average accuracy (%) after 5 tasks. This notebook: the {profile} profile's runs; full run: the "
            f"shipped `python -m cl_course table` ({shipped['protocol']['iterations']:,} iterations per task, "
            f"{shipped['seeds']} seeds); published: van de Ven & Tolias, arXiv:1904.07734v1 (2019), and their later "
            "numbers where they differ.", "",
            f"| method | {header} |", "|---|" + "---|---|---|" * len(SCENARIOS)]
    for m in METHODS:
        cells = []
        for s in SCENARIOS:
            history = results.get(s, {}).get(m)
            full = shipped["cells"].get(SHIPPED_NAME.get(m, m), {}).get(s)
            published, later = PUBLISHED.get(m, {}).get(s), LATER.get((m, s))
            cells += [f"{final_average(history):.1f}" if history else ("n/a" if full is None else "not trained"),
                      f"{full['mean_sem'][0]:.1f} +-{full['mean_sem'][1]:.1f}" if full else "n/a",
                      " / later ".join(v for v in (f"{published[0]:.1f}" if published else "", later or "") if v)]
        rows.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def plot_comparison(results, title=None):
    """This notebook's final average accuracies per scenario (bars) beside the published means (red ticks)."""
    data = {"cells": {m: {s: {"mean_sem": [final_average(h), math.nan]} for s, by_m in results.items()
                          for h in [by_m.get(m)] if h} for m in METHODS}}
    return plots.plot_scenario_table(data, PUBLISHED, title=title or "Split MNIST: this notebook's runs (bars) and "
                                                                     "van de Ven & Tolias (red ticks)")


# What the comparison's conclusions are about, each family in the notebook's order of meeting it
REGULARISERS, DISTILLERS = ("ewc", "si"), ("lwf",)
TRAINS_ON_OLD = ("er", "dgr", "icarl")  # replay that trains on stored or generated samples (A-GEM only projects)
NAMES = {"baseline": "the baseline", "ewc": "EWC", "si": "SI", "lwf": "LwF", "er": "ER", "agem": "A-GEM",
         "dgr": "DGR", "icarl": "iCaRL"}


@dataclass(frozen=True)
class Claim:
    """A sentence of the conclusions, with the run's own numbers in it, and whether the run bears it out."""
    scenario: str
    sentence: str
    holds: bool


def finals(results, scenario):
    """{method: final average accuracy} of the runs of `scenario` that trained."""
    return {m: final_average(h) for m, h in results.get(scenario, {}).items() if h}


def listed(accuracies):
    """"ER 90.1%, A-GEM 64.5%": each method that trained, in the lesson's order."""
    return ", ".join(f"{NAMES[m]} {accuracies[m]:.1f}%" for m in METHODS if m in accuracies)


def of(accuracies, methods):
    return {m: accuracies[m] for m in methods if m in accuracies}


def claims(results):
    """The conclusions the notebook draws, each built from `results` ({scenario: {method: History or None}}) and
    stated only about the methods that trained; a Claim's `holds` says whether this run bears it out. The quick
    profile bears out every one for seeds 1, 2, 3 and its own 1126 (benchmarks/README.md)."""
    out = []
    task = finals(results, "task")
    others = {m: v for m, v in task.items() if m != "baseline"}
    if "baseline" in task and others:
        lowest = min(others, key=others.get)
        out.append(Claim("task", f"Task-IL is easy for every method: none ends more than 1 point below the baseline's "
                                 f"{task['baseline']:.1f}% (the lowest is {NAMES[lowest]}, {others[lowest]:.1f}%).",
                         others[lowest] >= task["baseline"] - 1))
    domain = finals(results, "domain")
    trained, regularised = of(domain, ("er", "dgr")), of(domain, REGULARISERS)
    if trained and regularised:
        out.append(Claim("domain", f"In domain-IL the methods that train on old samples, stored or generated "
                                   f"({listed(trained)}), end above every regulariser ({listed(regularised)}).",
                         min(trained.values()) > max(regularised.values())))
    if trained and "agem" in domain:
        out.append(Claim("domain", f"A-GEM, which never trains on its memory and only keeps the memory's average "
                                   f"loss from rising, ends below the methods that do ({listed(of(domain, ('agem',)))}"
                                   f" against {listed(trained)}): it can lose one old task while the average holds.",
                         domain["agem"] < min(trained.values())))
    if "baseline" in domain and "lwf" in domain:
        pair = listed(of(domain, ("baseline", "lwf")))
        out.append(Claim("domain", f"LwF ends above the baseline ({pair}): the shared two-way head's outputs on new "
                                   "inputs are worth keeping.",
                         domain["lwf"] > domain["baseline"]))
    cls, runs = finals(results, "class"), results.get("class", {})
    if "baseline" in cls:
        out.append(Claim("class", f"In class-IL the baseline ends at {cls['baseline']:.1f}%, near one task's share "
                                  "of the test set (20%): it answers almost every image with one of the newest "
                                  "task's two digits.", cls["baseline"] <= 25))
    if runs.get("lwf"):
        first, newest = runs["lwf"].accuracy_matrix[-1][0], runs["lwf"].accuracy_matrix[-1][-1]
        out.append(Claim("class", f"LwF ends at {cls['lwf']:.1f}%: it keeps the first task's digits ({first:.1f}%) "
                                  f"and barely learns the newest task's ({newest:.1f}%), the baseline's failure "
                                  "turned around.", cls["lwf"] <= 30 and first >= 80 and newest <= 20))
    if runs.get("baseline"):
        newest = runs["baseline"].accuracy_matrix[-1][-1]
        for m in (m for m in REGULARISERS if runs.get(m)):
            theirs = runs[m].accuracy_matrix[-1][-1]
            out.append(Claim("class", f"{NAMES[m]} ends at {cls[m]:.1f}%, by holding on to old digits rather than "
                                      f"by learning new ones: its newest task ends at {theirs:.1f}%, the baseline's at "
                                      f"{newest:.1f}% (at least 30 points lower).", theirs <= newest - 30))
    weak, strong = of(cls, ("baseline",) + REGULARISERS + DISTILLERS), of(cls, TRAINS_ON_OLD)
    if weak and strong:
        out.append(Claim("class", f"Every method that trains on old samples, stored or generated ({listed(strong)}), "
                                  f"ends at least 20 points above the best of the others ({listed(weak)}).",
                         min(strong.values()) >= max(weak.values()) + 20))
    if weak and strong and "agem" in cls:
        out.append(Claim("class", f"A-GEM ({cls['agem']:.1f}%) ends between them: above every method that keeps no "
                                  "samples, below every one that trains on them.",
                         max(weak.values()) < cls["agem"] < min(strong.values())))
    return out


def conclusions(results):
    """The conclusions as markdown, one line per claim, each marked with whether this run bears it out."""
    lines = []
    for c in claims(results):
        mark = "holds in your run" if c.holds else ("**does not hold in your run**: look at this scenario's figures "
                                                    "above, and at the shipped full run in the table")
        lines.append(f"- {c.sentence} ({mark})")
    return "\n".join(lines) or "Train the methods above first: the conclusions are drawn from your runs."
