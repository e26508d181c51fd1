"""The replay memory at equal budgets: experience replay in class-IL Split MNIST with its memory filled by
random, reservoir or herding selection, K = 100, 200, 500, 1,000 and 2,000 samples in all, 3 seeds; and, in
the full protocol, iCaRL at K = 2,000 beside van de Ven et al.'s 94.57.

    CL_COURSE_DATA=../shared/data .venv/bin/python benchmarks/memory_budget.py --profile full    # ~2 h on 2 cores
    CL_COURSE_DATA=../shared/data .venv/bin/python benchmarks/memory_budget.py --profile quick   # lesson 2's
    CL_COURSE_DATA=../shared/data .venv/bin/python benchmarks/memory_budget.py --profile quick --here --threads 1

full: van de Ven & Tolias's protocol (table.protocol); quick: lesson 2's quick profile (profiles.split_config).
Worker processes of one thread each keep every finished run in results/memory_budget/PROFILE/runs.json, so a
rerun resumes; each profile's results.json and budget.png are written beside it, and results/memory_budget/
summary.md covers every profile that has results. --here runs the sweep in this process with --threads
threads, as the notebook does, and only reports its wall time (no runs.json: everything runs).
"""
import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from cl_course import budget, plots  # noqa: E402
from cl_course.profiles import split_config  # noqa: E402
from cl_course.table import LATER, Runs, protocol  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "memory_budget"
PUBLISHED = {"iCaRL, van de Ven et al. (K = 2,000)": (2000, float(LATER[("icarl", "class")].split()[0]))}
ICARL = {"full": (2000,), "quick": ()}


def base_of(profile):
    return protocol(scenario="class") if profile == "full" else split_config("class", profile)


def summary_markdown(results):
    """summary.md from {profile: results.json's dict}."""
    lines = ["# The replay memory at equal budgets", "",
             "Experience replay in class-IL Split MNIST, its memory of K samples in all filled by one of three rules "
             "(final average accuracy over the 5 tasks' test sets after the last task, %, mean +- SEM over the "
             "seeds, then each seed):",
             "- random: class-balanced, K // classes seen of each class, chosen uniformly when its task ends; an "
             "old class keeps a random subset of what it held;",
             "- herding: class-balanced, each class's first K // classes seen in herding's order (iCaRL's, on the "
             "features of the model at its task's end);",
             "- reservoir: Vitter's algorithm R over the stream of training batches (no task boundary, no class "
             "balance; the stream passes over a task's images several times, so an image can be stored twice).", ""]
    for profile, data in results.items():
        sweep = budget.BudgetSweep.from_json(data["sweep"])
        lines += [f"## {profile}: {data['about']}", "", "| K | " + " | ".join(sweep.er) + " |",
                  "|---|" + "---|" * len(sweep.er)]
        for i, k in enumerate(sweep.budgets):
            row = [f"{k:,}"]
            for s in sweep.er:
                mean, sem = sweep.mean_sem(s)[i]
                row.append(f"**{mean:.2f}** +-{sem:.2f} ({', '.join(f'{v:.1f}' for v in sweep.er[s][k])})")
            lines.append("| " + " | ".join(row) + " |")
        for k, (mean, sem) in sweep.icarl_mean_sem().items():
            lines += ["", f"iCaRL at K = {k:,}: **{mean:.2f}** +-{sem:.2f} "
                          f"({', '.join(f'{v:.1f}' for v in sweep.icarl[k])}); van de Ven et al.: "
                          f"{LATER[('icarl', 'class')]}."]
        lines += ["", f"Figure: [{profile}/budget.png]({profile}/budget.png). {data['runs']} runs, "
                      f"{data['cpu_minutes']:.0f} CPU-minutes (one thread each; runs.json keeps each run's time).", ""]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=("full", "quick"), default="full")
    parser.add_argument("--workers", type=int, default=2, help="processes of one thread (default %(default)s)")
    parser.add_argument("--seeds", type=int, default=len(budget.SEEDS), help="seeds 1..N (default %(default)s)")
    parser.add_argument("--budgets", default=",".join(map(str, budget.BUDGETS)), help="comma-separated K")
    parser.add_argument("--here", action="store_true", help="run in this process, as the notebook does, and time it")
    parser.add_argument("--threads", type=int, default=1, help="torch threads with --here (default %(default)s)")
    args = parser.parse_args()
    budgets = tuple(int(k) for k in args.budgets.split(","))
    seeds = tuple(range(1, args.seeds + 1))
    base = base_of(args.profile)
    if args.here:
        torch.set_num_threads(args.threads)
        start, cpu = time.perf_counter(), time.process_time()
        sweep = budget.sweep(base, args.profile, budgets, seeds=seeds)
        runs = len(budgets) * len(seeds) * len(budget.SELECTIONS)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        print(f"{args.profile}, in this process with {args.threads} thread(s): {runs} runs in {wall:.1f} s of wall "
              f"time, {cpu:.1f} s of CPU time ({wall / runs:.2f} s and {cpu / runs:.2f} s a run)")
        for s in budget.SELECTIONS:
            print(s, ", ".join(f"K={k}: {m:.1f}" for k, (m, _) in zip(budgets, sweep.mean_sem(s), strict=True)))
        return
    out = OUT / args.profile
    runs = Runs(out / "runs.json")
    sweep = budget.sweep(base, args.profile, budgets, seeds=seeds, icarl_budgets=ICARL[args.profile], runs=runs,
                         workers=args.workers)
    done = [r for r in runs.done.values() if r["cell"]["budget"] in budgets and r["cell"]["seed"] in seeds]
    about = ("van de Ven & Tolias's protocol (MLP 2x400, Adam 0.001, 2,000 iterations of 128 per task, plus 128 "
             "replayed), all training images" if args.profile == "full" else
             f"lesson 2's quick profile ({base.iterations} iterations of {base.batch_size} per task, "
             f"{base.subset:,} training and {base.test_subset} test images per task)")
    data = {"sweep": asdict(sweep), "about": about, "runs": len(done),
            "cpu_minutes": sum(r["wall_time_s"] for r in done) / 60, "config": asdict(base)}
    (out / "results.json").write_text(json.dumps(data, indent=1))
    plots.plot_memory_budget(sweep, out / "budget.png", published=PUBLISHED if args.profile == "full" else None)
    results = {p: json.loads((OUT / p / "results.json").read_text()) for p in ("full", "quick")
               if (OUT / p / "results.json").exists()}
    (OUT / "summary.md").write_text(summary_markdown(results))
    print(f"wrote {out}/results.json, budget.png and {OUT}/summary.md ({sweep.wall_time_s / 60:.1f} min)")


if __name__ == "__main__":
    main()
