"""`python -m cl_course run` / `cl-course run`: reproduce the HW14 comparison table."""
import argparse
import sys

from . import registry
from .config import FISHER_LABELS, MEMORY_SELECTIONS, PROTOCOLS, RunConfig
from .data import BENCHMARKS, SCENARIOS, DataError
from .report import write_outputs
from .train import load_tasks, run_methods, select_device


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage block
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def lambda_pair(text):
    method, sep, value = text.partition("=")
    try:
        if not sep:
            raise ValueError
        return method.strip().lower(), float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected METHOD=VALUE such as ewc=100, got {text!r}") from None


def method_list(text):
    methods, known = [m.strip().lower() for m in text.split(",") if m.strip()], registry.names()
    bad = [m for m in methods if m not in known]
    if bad or not methods:
        raise argparse.ArgumentTypeError(f"unknown method(s) {', '.join(bad) or repr(text)}; "
                                         f"choose from {','.join(known)}")
    return tuple(methods)


def build_parser():
    d = RunConfig()
    parser = Parser(prog="cl-course", description="Continual learning on Permuted MNIST (NTU ML 2021 HW14) "
                                                  "and Split MNIST in the three scenarios.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    run = sub.add_parser("run", help="train the methods one after another and write results, figures and summary.md",
                         description="Train each method on Permuted MNIST and compare with the HW14 TA's table. "
                                     "Defaults reproduce HW14: all six methods and joint training (the upper "
                                     "bound), 5 tasks x 10 epochs.")
    run.add_argument("--methods", type=method_list, default=d.methods,
                     help=f"comma-separated subset of {','.join(registry.names())} (default: HW14's six and joint)")
    run.add_argument("--benchmark", choices=BENCHMARKS, default=d.benchmark, help="default %(default)s")
    run.add_argument("--scenario", choices=SCENARIOS, default=None,
                     help="task, domain or class incremental (default: the benchmark's; Permuted MNIST: domain)")
    run.add_argument("--protocol", choices=PROTOCOLS, default=None,
                     help="hw14: the sample code's importances (test-set leakage included); paper: the papers' "
                          "(default: hw14 on permuted-mnist, paper on split-mnist)")
    run.add_argument("--tasks", type=int, default=d.tasks, help="number of permuted tasks (default %(default)s)")
    run.add_argument("--epochs", type=int, default=d.epochs, help="epochs per task (default %(default)s)")
    run.add_argument("--iterations", type=int, default=None,
                     help="batches per epoch instead of one pass (van de Ven & Tolias: --epochs 1 --iterations 2000)")
    run.add_argument("--batch-size", type=int, default=d.batch_size, help="training batch (default %(default)s)")
    run.add_argument("--lr", type=float, default=d.lr, help="Adam learning rate (default %(default)s)")
    run.add_argument("--lambda", dest="lambdas", type=lambda_pair, action="append", default=[], metavar="METHOD=VALUE",
                     help="regularisation strength for one method, repeatable (defaults: HW14's)")
    run.add_argument("--subset", type=int, default=None, help="training samples per task (default: all)")
    run.add_argument("--test-subset", type=int, default=None, help="test samples per task (default: all 10,000)")
    run.add_argument("--seed", type=int, default=d.seed, help="seed for python, numpy and torch (default %(default)s)")
    run.add_argument("--fisher-labels", choices=FISHER_LABELS, default=d.fisher_labels,
                     help="paper protocol: labels for EWC's and RWalk's Fisher (default %(default)s)")
    run.add_argument("--memory-budget", type=int, default=d.memory_budget,
                     help="replay memory of er, agem, gem and icarl: samples in all, shared equally among the "
                          "classes seen (default %(default)s)")
    run.add_argument("--memory-selection", choices=MEMORY_SELECTIONS, default=d.memory_selection,
                     help="how er, agem and gem fill it: random or herding per class when a task ends, or reservoir "
                          "sampling of every batch (default %(default)s; icarl always herds)")
    run.add_argument("--lwf-seen-classes", action="store_true",
                     help="class-IL lwf as van de Ven & Tolias's code: softmax over the classes seen so far, "
                          "distillation over the old classes only")
    run.add_argument("--task-inference", action="store_true",
                     help=f"context-specific methods ({', '.join(registry.names('context-specific'))}) in domain- or "
                          "class-IL: infer each test sample's task as the one whose context gives the lowest entropy")
    run.add_argument("--online-decay", type=float, default=d.online_decay,
                     help="online EWC's gamma (default %(default)s)")
    run.add_argument("--drop-transfer", type=float, default=d.drop_transfer,
                     help="imm-mean, imm-mode: drop-transfer's p, the chance a hidden unit's outgoing weights drop to "
                          "the last task's in a training batch (default %(default)s: off)")
    run.add_argument("--device", default=d.device, help="auto (CUDA, else MPS, else CPU), cpu, cuda, cuda:N, mps")
    run.add_argument("--data-root", default=None, help="torchvision MNIST root (default: $CL_COURSE_DATA, else data/)")
    run.add_argument("--out", default="runs/latest", help="output folder (default %(default)s)")
    run.add_argument("--quiet", action="store_true", help="no progress bars")
    table = sub.add_parser("table", help="Split MNIST: every method in the three scenarios over seeds, beside "
                                         "the published table (summary.md, results.json, scenarios.png)",
                           description="van de Ven & Tolias's Split MNIST protocol (MLP 2x400, Adam 0.001, 2,000 "
                                       "iterations of 128 per task); lambdas chosen on held-out training images. "
                                       "Finished runs are kept in OUT/runs.json: a rerun resumes.")
    table.add_argument("--benchmark", choices=("split-mnist",), default="split-mnist",
                       help="the benchmark with a published three-scenario table (only split-mnist)")
    table.add_argument("--methods", type=method_list, default=None, help="default: the table's methods")
    table.add_argument("--seeds", type=int, default=3, help="seeds per cell (default %(default)s)")
    table.add_argument("--iterations", type=int, default=2000, help="per task (default %(default)s)")
    table.add_argument("--out", default="runs/split_mnist", help="output folder (default %(default)s)")
    context = sub.add_parser("context-table", help="the context-specific family in task-IL over seeds, beside the "
                                                   "published numbers, and class-IL with the task inferred",
                             description="Split MNIST (van de Ven & Tolias's protocol) and Permuted MNIST with 10 "
                                         "tasks (theirs: about 15 CPU-hours a seed, meant for a GPU or a cluster); "
                                         "bounds stated before running. Finished runs are kept in "
                                         "OUT/BENCHMARK/runs.json: a rerun resumes.")
    context.add_argument("--benchmarks", type=lambda t: tuple(b.strip() for b in t.split(",") if b.strip()),
                         default=("split-mnist", "permuted-mnist"), help="comma-separated (default: both)")
    context.add_argument("--seeds", type=int, default=3, help="seeds per cell (default %(default)s)")
    context.add_argument("--iterations", type=int, default=None,
                         help="per task (default: each benchmark's protocol, 2,000 and 5,000)")
    context.add_argument("--out", default="runs/context", help="output folder (default %(default)s)")
    for command in (table, context):
        command.add_argument("--workers", type=int, default=2,
                             help="runs side by side, one thread each (default 2; with --cluster local its processes)")
        command.add_argument("--scheduler", default=None, help="run on the Dask cluster of this scheduler address "
                                                               "(workers: the same environment and data root)")
        command.add_argument("--cluster", default=None, choices=("local",),
                             help="local: run on a Dask LocalCluster of --workers processes here")
        command.add_argument("--data-root", default=None,
                             help="torchvision MNIST root (default: $CL_COURSE_DATA, else data/)")
    return parser


def table_main(parser, args):
    from .context_table import build_context_table
    from .data import data_root, load_mnist
    from .table import TABLE_METHODS, build_table, protocol
    for name in ("seeds", "iterations", "workers"):
        if getattr(args, name) is not None and getattr(args, name) < 1:  # context-table's iterations: None, its own
            parser.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    try:
        load_mnist(args.data_root)  # a missing data root stops here, not in a worker
    except DataError as e:
        sys.exit(f"cl-course: error: {e}")
    if args.data_root:  # absolute: the workers may start elsewhere
        args.data_root = str(data_root(args.data_root))
    cluster = dict(workers=args.workers, scheduler=args.scheduler, cluster=args.cluster)
    try:
        if args.command == "table":
            base = protocol(iterations=args.iterations, data_root=args.data_root)
            data = build_table(args.out, args.methods or TABLE_METHODS, seeds=args.seeds, base=base, **cluster)
            print(f"wrote {args.out}/summary.md, results.json and scenarios.png ({len(data['cells'])} methods)")
        else:
            shorter = {"iterations": args.iterations} if args.iterations else {}
            build_context_table(args.out, args.benchmarks, args.seeds, data_root=args.data_root, **cluster, **shorter)
            print(f"wrote {args.out}/summary.md and results.json")
    except ValueError as e:
        parser.error(str(e))


def check_memory_budget(config, tasks):
    """A class-balanced memory must keep at least one sample of every class stored, by the last task's start
    (a class: a label within its task); a reservoir has no quota. Checked before training, not when it fails."""
    reservoir = config.memory_selection == "reservoir"  # ER's, A-GEM's and GEM's; iCaRL always herds
    quotas = {"icarl"} if reservoir else set(registry.names("replay"))
    stored = sum(len(t.y_train.unique()) for t in tasks[:-1])
    if quotas & set(config.methods) and config.memory_budget < stored:
        raise ValueError(f"memory-budget {config.memory_budget} cannot keep one sample of each of the {stored} "
                         f"classes stored before the last task; give at least {stored}")


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command in ("table", "context-table"):
        return table_main(parser, args)
    protocol = args.protocol or BENCHMARKS[args.benchmark].protocol
    config = RunConfig(methods=args.methods, protocol=protocol, benchmark=args.benchmark, scenario=args.scenario,
                       tasks=args.tasks, epochs=args.epochs, iterations=args.iterations,
                       batch_size=args.batch_size, lr=args.lr, lambdas=dict(args.lambdas), subset=args.subset,
                       test_subset=args.test_subset, seed=args.seed, fisher_labels=args.fisher_labels,
                       memory_budget=args.memory_budget, memory_selection=args.memory_selection,
                       lwf_seen_classes=args.lwf_seen_classes, task_inference=args.task_inference,
                       online_decay=args.online_decay, drop_transfer=args.drop_transfer,
                       device=args.device, data_root=args.data_root)
    try:
        config.check()
        device = select_device(config.device)
        tasks = load_tasks(config, device)
        check_memory_budget(config, tasks)
    except ValueError as e:
        parser.error(str(e))
    except DataError as e:
        sys.exit(f"cl-course: error: {e}")
    print(f"cl-course: {', '.join(config.methods)} | protocol {config.protocol} | {config.tasks} tasks x "
          f"{config.epochs} epochs | {len(tasks[0].x_train)} training samples per task | {device}", file=sys.stderr)
    results = run_methods(config, tasks, progress=not args.quiet)
    data = write_outputs(args.out, config, results, device, len(tasks[0].x_train))
    for m, r in data["methods"].items():
        print(f"{m:9s} average accuracy {r['metrics']['average_accuracy']:6.2f}%  ({r['wall_time_s']:.0f} s)")
    print(f"wrote {args.out}/results.json, summary.md and figures")


if __name__ == "__main__":
    main()
