"""Where a Split MNIST run's time goes: each strategy hook, the evaluation, and the rest of the step (the
classifier's forward, backward and Adam step, replayed samples' forward included), per method.

    CL_COURSE_DATA=../shared/data python benchmarks/split_mnist_time.py [--iterations 400] [--threads 1]

van de Ven & Tolias's protocol (MLP 2x400, Adam 0.001, batch 128), class-IL, 2 tasks of `--iterations`
each (the second task is the one with replay), evaluation after each task.
"""
import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from cl_course import train  # noqa: E402
from cl_course.methods import make_strategy  # noqa: E402
from cl_course.model import MLP  # noqa: E402
from cl_course.table import protocol  # noqa: E402

HOOKS = ("before_task", "training_data", "loss", "replay", "adjust_gradients", "after_step", "after_task")
METHODS = ("baseline", "online-ewc", "si", "lwf", "er", "agem", "gem", "dgr", "icarl")


def timed(spent, name, hook):
    def call(*args):
        start = time.perf_counter()
        result = hook(*args)
        spent[name] += time.perf_counter() - start
        return result
    return call


def profile(method, config, tasks):
    train.seed_everything(1)
    model = MLP(10, hidden=config.hidden_sizes())
    strategy = make_strategy(method, config)
    spent = defaultdict(float)
    for name in HOOKS:
        setattr(strategy, name, timed(spent, name, getattr(strategy, name)))
    evaluate = train.evaluate
    train.evaluate = timed(spent, "evaluation", evaluate)  # fit looks it up in the module at each call
    try:
        start = time.perf_counter()
        train.fit(model, tasks, strategy, epochs=1, batch_size=config.batch_size, lr=config.lr,
                  iterations=config.iterations, progress=False, generator=torch.Generator().manual_seed(1))
        total = time.perf_counter() - start
    finally:
        train.evaluate = evaluate
    spent["rest of the step"] = total - sum(spent.values())
    return total, dict(spent)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=400)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = protocol(scenario="class", tasks=2, iterations=args.iterations)
    tasks = train.load_tasks(config, "cpu")
    columns = ("rest of the step", "loss", "replay", "adjust_gradients", "after_step", "after_task", "evaluation")
    print(f"class-IL, 2 tasks x {args.iterations} iterations, {args.threads} thread(s); seconds "
          f"(ms per iteration in brackets for the total)")
    print("| method | total | " + " | ".join(columns) + " |")
    print("|---|---|" + "---|" * len(columns))
    profile("baseline", config, tasks)  # warm-up: the first run pays for allocations and kernel choice
    for method in METHODS:
        total, spent = profile(method, config, tasks)
        per_step = 1000 * total / (2 * args.iterations)
        print(f"| {method} | {total:.1f} ({per_step:.1f}) | " + " | ".join(f"{spent.get(c, 0):.2f}" for c in columns)
              + " |", flush=True)


if __name__ == "__main__":
    main()
