"""LwF in class-IL Split MNIST with and without the variant of van de Ven & Tolias's code (RunConfig
lwf_seen_classes: the current task's softmax over the classes seen so far, distillation over the old classes
only), seeds 1-3: final average accuracy and the final accuracy on each task.

    CL_COURSE_DATA=../shared/data .venv/bin/python benchmarks/lwf_variant.py --profile quick
    CL_COURSE_DATA=../shared/data .venv/bin/python benchmarks/lwf_variant.py --profile full    # ~15 CPU-minutes

full: van de Ven & Tolias's protocol (table.protocol); quick: lesson 2's quick profile. Each variant's runs are
kept in results/lwf_variant/PROFILE-VARIANT.json (a rerun resumes), two worker processes of one thread;
results/lwf_variant/summary.md covers every profile that has runs.
"""
import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cl_course.profiles import split_config  # noqa: E402
from cl_course.table import Cell, Runs, final_average, mean_sem, protocol  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "lwf_variant"
VARIANTS = {"every output": False, "seen classes": True}
SEEDS = (1, 2, 3)


def base_of(profile, seen_classes):
    base = protocol(scenario="class") if profile == "full" else split_config("class", profile)
    return replace(base, lwf_seen_classes=seen_classes)


def runs_path(profile, variant):
    return OUT / f"{profile}-{variant.replace(' ', '-')}.json"


def summary_markdown():
    lines = ["# LwF in class-IL: every output, or the classes seen (van de Ven & Tolias's code)", "",
             "every output: the current task's cross-entropy over all 10 outputs and the distillation through all "
             "of them (the library's default). seen classes (`--lwf-seen-classes`): the softmax of the current "
             "task over the classes seen so far, the distillation over the old classes only. Final average "
             "accuracy after task 5 (%, mean +- SEM over seeds 1-3, then seeds 1, 2 and 3) and the final accuracy on "
             "each task's test set (mean over the seeds).", ""]
    for profile in ("quick", "full"):
        found = {v: json.loads(runs_path(profile, v).read_text()) for v in VARIANTS if runs_path(profile, v).exists()}
        if not found:
            continue
        tasks = " | ".join(f"task {k}" for k in range(1, 6))
        lines += [f"## {profile}", "", f"| variant | final average | seeds | {tasks} |", "|---|---|---|" + "---|" * 5]
        for variant, runs in found.items():
            runs = sorted(runs.values(), key=lambda r: r["cell"]["seed"])  # runs.json keeps them as they finished
            finals = [final_average(r) for r in runs]
            last = [r["accuracy_matrix"][-1] for r in runs]
            per_task = [sum(row[j] for row in last) / len(last) for j in range(len(last[0]))]
            mean, sem = mean_sem(finals)
            lines.append(f"| {variant} | **{mean:.2f}** +-{sem:.2f} | {', '.join(f'{v:.1f}' for v in finals)} | "
                         + " | ".join(f"{a:.1f}" for a in per_task) + " |")
        lines.append("")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=("full", "quick"), default="quick")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    for variant, seen_classes in VARIANTS.items():
        cells = [Cell("lwf", "class", seed, 0.0, False) for seed in SEEDS]
        Runs(runs_path(args.profile, variant)).run(cells, base_of(args.profile, seen_classes), args.workers,
                                                   desc=f"lwf, {variant}")
    (OUT / "summary.md").write_text(summary_markdown())
    print((OUT / "summary.md").read_text())


if __name__ == "__main__":
    main()
