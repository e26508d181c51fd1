"""Lesson 2's quick profile: its own settings, chosen on held-out training images, and the bounds its text
relies on, checked on the test set for seeds 1, 2 and 3.

    python benchmarks/split_quick_profile.py --data-root ../shared/data            # the bounds, seeds 1-3
    python benchmarks/split_quick_profile.py --data-root ../shared/data --sweep    # how the settings were chosen

The bounds (issue 25), on each seed's final average accuracies with the library's methods:
  task-IL    no method more than 1 point below the baseline;
  domain-IL  every replay method (ER, A-GEM, DGR) above every regulariser (EWC, SI);
  class-IL   the baseline at most 25, every regulariser or distiller (EWC, SI, LwF) at most 30, and every
             replay method (ER, A-GEM, DGR, iCaRL) at least 20 points above the best of the baseline, EWC, SI
             and LwF.

--sweep trains on the profile's own 2,000 training images per task and scores on the next 500 of the same
seeded order (training images the profile never uses; no test image), averaging over TUNING_SEEDS, which are
not the bounds' seeds. Each lambda grid is extended by 10x while its best value sits at an end; the generator's
settings are scored over the three scenarios together, and the cheapest within GENERATOR_TIE of the best mean
is chosen. Every run is kept in --cache, so a rerun resumes. cl_course/profiles.py's SPLIT_LAMBDAS["quick"] and
QUICK_GENERATOR are what it chooses.
"""
import argparse
import functools
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from statistics import mean

import torch
from tqdm.auto import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cl_course import metrics, profiles, registry  # noqa: E402
from cl_course.lessons import lesson2  # noqa: E402
from cl_course.data import SCENARIOS, Task, load_mnist, normalise, subset_indices  # noqa: E402
from cl_course.generative import VAE  # noqa: E402
from cl_course.train import load_tasks, run_methods  # noqa: E402

BOUND_SEEDS = (1, 2, 3)
TUNING_SEEDS = (4, 5, 6)  # disjoint from the bounds' seeds, so that the bounds test a choice made without them
# every held-out run's score, kept so that a rerun resumes; tests/test_profiles.py checks the profile against it
CACHE = ROOT / "benchmarks" / "results" / "split_quick_profile" / "held_out_runs.json"
HELD_OUT = 500            # held-out training images per task, as many as the profile's test images
LAMBDA_GRIDS = {"ewc": [10.0 ** k for k in range(2, 12)], "si": [10.0 ** k for k in range(-2, 8)],  # 10 decades
                "xdg-si": [10.0 ** k for k in range(0, 10)]}  # lesson 3's (lesson3_quick_profile.py), task-IL
LAMBDA_RANGE = (1e-6, 1e16)  # how far an extension may go
# DGR's generator: (batches per task, VAE learning rate, hidden layers, latent units). The first is van de Ven &
# Tolias's VAE trained only alongside the classifier (the quick profile before issue 25), the second the same VAE
# given 200 batches; smaller VAEs cost less per batch, so they can have more batches within the notebook's time.
# The last three extend the grid past the chosen setting's ends (the smallest VAE, the fewest batches, the lr).
GENERATOR_GRID = [(None, 1e-3, (400, 400), 100), (200, 1e-3, (400, 400), 100), (100, 3e-3, (200,), 20),
                  (100, 1e-2, (200,), 20), (200, 1e-2, (200,), 20), (100, 1e-2, (100,), 10), (200, 1e-2, (100,), 10),
                  (100, 3e-2, (100,), 10), (100, 1e-2, (50,), 5), (60, 1e-2, (100,), 10), (100, 3e-3, (100,), 10)]
GENERATOR_TIE = 1.0  # points: the cheapest generator within this of the best mean score is chosen (seeds differ more)
REGULARISERS = ("ewc", "si")
REPLAY = ("er", "agem", "dgr")
DISTILLERS = ("ewc", "si", "lwf")
CLASS_REPLAY = ("er", "agem", "dgr", "icarl")


def methods_of(scenario):
    return tuple(m for m in lesson2.METHODS if scenario in registry.spec(m).scenarios)


def held_out_tasks(config):
    """The profile's Split MNIST tasks (the same `subset` training images per task) with the next HELD_OUT
    training images of the same seeded order in place of the test set."""
    (x, y), _ = load_mnist(config.data_root)
    scenario, tasks = config.the_scenario(), []
    for t in range(config.tasks):
        digits = (2 * t, 2 * t + 1)
        mask = (y == digits[0]) | (y == digits[1])
        order = subset_indices(int(mask.sum()), config.subset + HELD_OUT, config.seed + t)  # data.split_mnist's
        images, labels = normalise(x[mask]), (y[mask] if scenario == "class" else y[mask] - digits[0])
        train, held = order[:config.subset], order[config.subset:]
        tasks.append(Task(f"digits {digits[0]}/{digits[1]}", images[train], labels[train], images[held],
                          labels[held], head=t if scenario == "task" else 0, classes=digits))
    return tasks


def final_average(method, config, tasks):
    history = run_methods(replace(config, methods=(method,)), tasks, progress=False)[method]
    return metrics.average_accuracy(history.accuracy_matrix), history


class Cache:
    """{key: held-out final average accuracy} in a JSON file, written after every run."""

    def __init__(self, path):
        self.path = Path(path)
        self.scores = json.loads(self.path.read_text()) if self.path.exists() else {}

    def score(self, method, scenario, seed, label, **overrides):
        key = f"{method}|{scenario}|{seed}|{label}"
        if key not in self.scores:
            config = profiles.split_config(scenario, "quick", seed=seed, **overrides)
            self.scores[key] = final_average(method, config, held_out_tasks(config))[0]
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(self.scores, indent=1))
        return self.scores[key]


def choose_lambda(cache, method, scenario, bar):
    """{lambda: mean held-out score over TUNING_SEEDS}, the grid extended by 10x while its best value sits at an
    end strictly ahead of its neighbour."""
    grid, scores = list(LAMBDA_GRIDS[method]), {}
    while True:
        for lam in grid:
            if lam not in scores:
                scores[lam] = mean(cache.score(method, scenario, s, f"lambda={lam:g}", lambdas={method: lam})
                                   for s in TUNING_SEEDS)
                bar.update(len(TUNING_SEEDS))
        scores = dict(sorted(scores.items()))
        best = best_of(scores)
        if best == grid[0] and scores[best] > scores[grid[1]] and grid[0] / 10 >= LAMBDA_RANGE[0]:
            grid.insert(0, grid[0] / 10)
        elif best == grid[-1] and scores[best] > scores[grid[-2]] and grid[-1] * 10 <= LAMBDA_RANGE[1]:
            grid.append(grid[-1] * 10)
        else:
            return scores


def best_of(scores):
    """The key with the highest score; a tie goes to the first (the smaller lambda)."""
    return max(scores, key=lambda k: (scores[k], -list(scores).index(k)))


def generator_overrides(setting):
    iterations, lr, hidden, latent = setting
    return dict(generator_iterations=iterations, generator_lr=lr, generator_hidden=hidden, generator_latent=latent)


def generator_label(setting):
    iterations, lr, hidden, latent = setting
    return f"generator={iterations or 'alongside'}|{lr:g}|{'-'.join(map(str, hidden))}|{latent}"


def sweep_lambdas(cache, bar):
    """{scenario: {method: {lambda: score}}}, with the baseline's score per scenario beside them (lambda 0)."""
    out = {}
    for scenario in SCENARIOS:
        baseline = mean(cache.score("baseline", scenario, s, "lambda=0") for s in TUNING_SEEDS)
        out[scenario] = {"baseline": {0.0: baseline}}
        bar.update(len(TUNING_SEEDS))
        out[scenario] |= {m: choose_lambda(cache, m, scenario, bar) for m in REGULARISERS}
    return out


def sweep_generator(cache, bar):
    """{setting: {scenario: score}}."""
    out = {}
    for setting in GENERATOR_GRID:
        out[setting] = {s: mean(cache.score("dgr", s, seed, generator_label(setting), **generator_overrides(setting))
                                for seed in TUNING_SEEDS) for s in SCENARIOS}
        bar.update(len(SCENARIOS) * len(TUNING_SEEDS))
    return out


def generator_seconds(setting, config):
    """Estimated VAE seconds per run: its batches in a run (each task's, but the last's extra ones, which nothing
    uses) times the CPU time of one batch with its replay."""
    iterations, _, hidden, latent = setting
    batches = config.tasks * config.iterations + (config.tasks - 1) * max(0, (iterations or 0) - config.iterations)
    return batches * vae_step_seconds(hidden, latent, config.batch_size)


@functools.cache
def vae_step_seconds(hidden, latent, batch_size, steps=40, blocks=5):
    """CPU seconds of one VAE step on a batch and as many samples of a previous VAE: the best of `blocks` blocks
    of `steps` (process time, and the best block, so that other work on the machine counts less)."""
    vae, previous = VAE(784, hidden, latent), VAE(784, hidden, latent).requires_grad_(False)
    optimizer, x = torch.optim.Adam(vae.parameters()), torch.randn(batch_size, 784)
    times = []
    for block in range(blocks + 1):  # the first warms up
        start = time.process_time()
        for _ in range(steps):
            loss = vae.loss(x) / 2 + vae.loss(previous.sample(len(x))) / 2
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        times += [(time.process_time() - start) / steps] if block else []
    return min(times)


def cheapest_good(means, seconds):
    """The cheapest setting within GENERATOR_TIE of the best mean score."""
    top = max(means.values())
    return min((s for s in means if means[s] >= top - GENERATOR_TIE), key=seconds.get)


def sweep(cache):
    runs = len(TUNING_SEEDS) * len(SCENARIOS) * (1 + sum(map(len, LAMBDA_GRIDS.values())) + len(GENERATOR_GRID))
    with tqdm(total=runs, desc="held-out runs") as bar:
        lambdas, generator = sweep_lambdas(cache, bar), sweep_generator(cache, bar)
    print(f"\nHeld-out final average accuracy (%): {HELD_OUT} held-out training images per task, mean of seeds "
          f"{', '.join(map(str, TUNING_SEEDS))}\n")
    for scenario in SCENARIOS:
        for method, scores in lambdas[scenario].items():
            cells = " | ".join(f"{lam:g}: {score:.2f}" for lam, score in scores.items())
            print(f"| {scenario} | {method} | {cells} | **{best_of(scores):g}** |")
    means = {setting: mean(by_s.values()) for setting, by_s in generator.items()}
    config = profiles.split_config("class", "quick")
    seconds = {setting: generator_seconds(setting, config) for setting in GENERATOR_GRID}
    print("\n| generator batches per task | VAE lr | hidden | latent | " + " | ".join(f"{s}-IL" for s in SCENARIOS)
          + " | mean | VAE CPU s per run (estimated) |\n|---|---|---|---|" + "---|" * (len(SCENARIOS) + 2))
    for setting, by_s in generator.items():
        iterations, lr, hidden, latent = setting
        print(f"| {iterations or 'alongside (40)'} | {lr:g} | {'-'.join(map(str, hidden))} | {latent} | "
              + " | ".join(f"{by_s[s]:.2f}" for s in SCENARIOS) + f" | {means[setting]:.2f} | {seconds[setting]:.1f} |")
    chosen = {s: {m: best_of(lambdas[s][m]) for m in REGULARISERS} for s in SCENARIOS}
    print(f"\nChosen lambdas: {chosen}\nGenerator: the best mean {max(means.values()):.2f}; the cheapest within "
          f"{GENERATOR_TIE:g} point of it: {cheapest_good(means, seconds)}")


def bounds(accuracy):
    """[(scenario, statement, holds)] for one seed's {scenario: {method: final average accuracy}}."""
    task, domain, cls = (accuracy[s] for s in SCENARIOS)
    out = [("task", f"{m} {task[m]:.1f} at least the baseline's {task['baseline']:.1f} - 1",
            task[m] >= task["baseline"] - 1) for m in task if m != "baseline"]
    top = max(domain[m] for m in REGULARISERS)
    out += [("domain", f"{m} {domain[m]:.1f} above every regulariser (best {top:.1f})", domain[m] > top)
            for m in REPLAY]
    out.append(("class", f"baseline {cls['baseline']:.1f} at most 25", cls["baseline"] <= 25))
    out += [("class", f"{m} {cls[m]:.1f} at most 30", cls[m] <= 30) for m in DISTILLERS]
    floor = max(cls[m] for m in ("baseline", *DISTILLERS)) + 20
    out += [("class", f"{m} {cls[m]:.1f} at least {floor:.1f} (the best of baseline, EWC, SI, LwF + 20)",
             cls[m] >= floor) for m in CLASS_REPLAY]
    return out


def check_bounds(seeds):
    """Train every lesson-2 method in every scenario for each seed; print the table, the bounds and the times."""
    times, failures = {}, 0
    for seed in seeds:
        accuracy = {s: {} for s in SCENARIOS}
        for scenario in SCENARIOS:
            config = profiles.split_config(scenario, "quick", seed=seed)
            tasks = load_tasks(config, "cpu")
            for method in tqdm(methods_of(scenario), desc=f"seed {seed}, {scenario}-IL", leave=False):
                cpu = time.process_time()
                accuracy[scenario][method], history = final_average(method, config, tasks)
                times.setdefault((scenario, method), []).append((history.wall_time, time.process_time() - cpu))
        print(f"\nSeed {seed}: final average accuracy (%), test set\n\n| method | "
              + " | ".join(f"{s}-IL" for s in SCENARIOS) + " |\n|---|" + "---|" * len(SCENARIOS))
        for method in lesson2.METHODS:
            print(f"| {method} | " + " | ".join(f"{accuracy[s][method]:.1f}" if method in accuracy[s] else ""
                                               for s in SCENARIOS) + " |")
        print()
        for scenario, statement, holds in bounds(accuracy):
            failures += not holds
            print(f"- {scenario}-IL: {statement}: {'holds' if holds else 'FAILS'}")
    print("\nSeconds per run, wall / CPU (process time, less sensitive to other work on the machine), mean over the "
          "seeds, one torch thread\n\n| method | " + " | ".join(f"{s}-IL" for s in SCENARIOS) + " |\n|---|"
          + "---|" * len(SCENARIOS))
    for method in lesson2.METHODS:
        print(f"| {method} | " + " | ".join(wall_and_cpu(times[s, method]) if (s, method) in times else ""
                                           for s in SCENARIOS) + " |")
    print(f"\n{failures} bound(s) failed" if failures else "\nEvery bound holds")
    return failures


def wall_and_cpu(runs):
    wall, cpu = zip(*runs, strict=True)
    return f"{mean(wall):.1f} / {mean(cpu):.1f}"


def main(sweep=sweep, check_bounds=check_bounds, doc=__doc__, sweep_help="the held-out grids and their scores"):
    """The command line of a quick profile's script (this one's, or lesson3_quick_profile.py's): --sweep runs
    sweep(Cache), otherwise check_bounds(seeds) returns the number of bounds that failed (the exit status)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--sweep", action="store_true", help=sweep_help)
    parser.add_argument("--seeds", type=int, nargs="+", default=BOUND_SEEDS, help="the bounds' seeds (default 1 2 3)")
    parser.add_argument("--cache", default=str(CACHE), help="the sweep's finished runs (default: the recorded ones)")
    args = parser.parse_args()
    if args.data_root:
        os.environ["CL_COURSE_DATA"] = str(Path(args.data_root).resolve())
    os.environ.pop(profiles.PROFILE_VARIABLE, None)  # the quick profile, whatever the shell says
    torch.set_num_threads(1)  # the times are per run on one thread, as the README reports them
    start = time.perf_counter()
    if args.sweep:
        sweep(Cache(args.cache))
        failed = 0
    else:
        failed = check_bounds(args.seeds)
    print(f"({time.perf_counter() - start:.0f} s in all)")
    sys.exit(1 if failed else 0)

if __name__ == "__main__":
    main()
