"""What the course notebook calls: start-up, training one method with the notebook's answers,
showing figures, and the closing comparison. The logic lives here; the notebook explains and plots."""
import io
import time
from dataclasses import replace

import torch

from .. import EDITION, __version__, metrics
from ..config import HW14_LAMBDAS, HW14_METHODS, HW14_TA_RESULTS, REGULARISED
from ..data import data_root
from ..model import MLP
from ..profiles import COSTS, PROFILE_VARIABLE, profile_config, profile_name
from ..report import histories, precomputed
from ..strategies import EWC, Baseline
from ..teaching import selfcheck
from ..teaching.blanks import BLANKS
from ..train import fit, load_tasks, run_methods, seed_everything, select_device


def welcome(profile, costs=COSTS):
    """The first cell's report: versions, the device, and what the chosen profile costs (`costs`: the
    lesson's, profiles.COSTS or profiles.SPLIT_COSTS)."""
    device = select_device()
    gpu = f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""
    print(f"cl_course {__version__} ({EDITION} edition), torch {torch.__version__}, device: {device}{gpu}")
    name = profile_name(profile)
    source = f"from {PROFILE_VARIABLE}" if name != profile else "PROFILE above"
    print(f"Profile {name} ({source}): {costs[name]}.")
    if device.type == "cpu":
        print("No GPU: the quick profile is the one to use here.")
    elif name == "quick":
        print(f'With this GPU you may choose PROFILE = "full": {costs["full"]}. To use it, set it in this cell '
              "and run the notebook again.")


def start(profile=None, **overrides):
    """The run profile's config and its Permuted MNIST tasks on the best device; prints both."""
    name = profile_name(profile)
    config = profile_config(name, **overrides)
    device = select_device(config.device)
    tasks = load_tasks(config, device)
    print(f"profile {name}: {config.tasks} tasks x {config.epochs} epochs, {len(tasks[0].x_train):,} training and "
          f"{len(tasks[0].x_test):,} test images per task, protocol {config.protocol}, Adam lr {config.lr:g}, on "
          f"{device} (data: {data_root(config.data_root)})")
    print("lambdas: " + ", ".join(f"{m} {config.lam(m):g}" for m in REGULARISED)
          + (f"; importances from {config.importance_subset:,} random training images of each task"
             if config.importance_subset and config.importance_subset < len(tasks[0].x_train) else ""))
    return config, tasks


def checked(method, answers, device):
    """Run the self-check of each of the notebook's answers ({library name: function or class}) on the
    training device, so that an unwritten or wrong one stops `method` within a second rather than after
    minutes of training. A name that is no blank's is a one-line error naming the blanks: the library would
    leave it unused, silently."""
    unknown = set(answers) - set(BLANKS)
    if unknown:
        raise ValueError(f"unknown answer {sorted(unknown)[0]!r}; the notebook's answers are {', '.join(BLANKS)}")
    for name, function in answers.items():
        try:
            selfcheck.check(name, function, verbose=False, device=device)
        except NotImplementedError:
            raise selfcheck.NotWrittenError(f"{method} cannot train yet: {name} is not written (fill in its cell "
                                            "above and run it)") from None
        except selfcheck.SelfCheckError as e:
            raise selfcheck.SelfCheckError(f"{method} will not train with this {name}, which fails its self-check "
                                           f"on {device}: {e}") from None
        except Exception as e:
            if hasattr(e, "add_note"):  # Python 3.11+
                e.add_note(f"(raised by your {name} on the self-check's fixture on {device}, before training {method})")
            raise


def train(method, config, tasks, **answers):
    """Train `method` on `tasks` with the notebook's functions (`answers`, by library name, e.g.
    fisher_diagonal=fisher_diagonal), each self-checked first; returns its train.History."""
    checked(method, answers, tasks[0].x_train.device)
    try:
        return run_methods(replace(config, methods=(method,)), tasks, answers=answers or None)[method]
    except NotImplementedError as e:
        needs = ", ".join(answers) or "its functions"
        raise selfcheck.NotWrittenError(f"{method} cannot train yet: {needs} must be written first "
                                        f"({str(e) or 'a cell above still raises NotImplementedError'})") from None


def show(fig):
    """Display a matplotlib Figure as a PNG (works in JupyterLab, Colab and ipywidgets.Output)."""
    from IPython.display import Image, display
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    display(Image(buffer.getvalue()))


def lambda_sweep(method, lambdas, config, tasks, trained=None, **answers):
    """[History] of `method` trained once per lambda, in order (the stability-plasticity trade-off). At the
    profile's own lambda the run is the one in `trained` ({method: History}, the notebook's results) when it
    is there: training is seeded, so it would be the same run again."""
    runs = []
    for lam in lambdas:
        again = lam == config.lam(method) and method in (trained or {})
        runs.append(trained[method] if again else
                    train(method, replace(config, lambdas=config.lambdas | {method: lam}), tasks, **answers))
    return runs


def importance_subset_stability(fisher_diagonal, config, tasks):
    """What computing EWC's Fisher from `config.importance_subset` samples of a task (as the regularisers do in
    this profile) changes, against all of the task's training images: a model trained on task 1 as the baseline
    is, then `fisher_diagonal` on both. Prints, per parameter tensor, the relative difference and the correlation
    of the entries, and over all parameters also the share of the 10% largest entries found by both. Returns
    the rows: (name, relative difference, correlation, share or None)."""
    checked("ewc", {"fisher_diagonal": fisher_diagonal}, tasks[0].x_train.device)
    if config.importance_subset is None or config.importance_subset >= len(tasks[0].x_train):
        print(f"This profile computes importances from all {len(tasks[0].x_train):,} training images of each task.")
        return []
    seed_everything(config.seed)
    model = MLP(10, hidden=config.hidden_sizes(), in_features=tasks[0].x_train[0].numel()).to(tasks[0].x_train.device)
    fit(model, tasks[:1], Baseline(), config.epochs, config.batch_size, config.lr, config.eval_batch_size,
        torch.Generator().manual_seed(config.seed), progress=False)
    estimates, seconds = [], []
    for samples in (config.importance_subset, None):  # drawn as training draws them
        batches = EWC(0.0, "paper", batch_size=config.importance_batch_size, seed=config.seed,
                      samples=samples).training_batches(model, tasks[0])
        start = time.perf_counter()
        estimates.append({n: t.detach().double().cpu() for n, t in fisher_diagonal(model, batches).items()})
        seconds.append(time.perf_counter() - start)
    subset, whole = estimates

    def compared(a, b, share=False):
        top = max(1, len(b) // 10)
        found = len(set(a.topk(top).indices.tolist()) & set(b.topk(top).indices.tolist())) / top if share else None
        return ((a - b).norm() / b.norm()).item(), torch.corrcoef(torch.stack([a, b]))[0, 1].item(), found

    rows = [(n, *compared(subset[n].flatten(), f.flatten())) for n, f in whole.items()]
    rows.append(("all", *compared(torch.cat([t.flatten() for t in subset.values()]),
                                  torch.cat([t.flatten() for t in whole.values()]), share=True)))
    print(f"EWC's Fisher after task 1 from {config.importance_subset:,} of its {len(tasks[0].x_train):,} training "
          f"images ({seconds[0]:.1f} s) against all of them ({seconds[1]:.1f} s):")
    print(f"  {'parameters':12s} {'relative difference':>20s} {'correlation':>12s} {'10% largest found by both':>26s}")
    for n, difference, correlation, found in rows:
        print(f"  {n:12s} {difference:20.3f} {correlation:12.3f} {'' if found is None else f'{found:.0%}':>26s}")
    return rows


def _cells(history_or_record, lam):
    """average accuracy, BWT and lambda cells of a History or of a shipped run's record."""
    if isinstance(history_or_record, dict):
        m = history_or_record["metrics"]
        return f"{m['average_accuracy']:.2f} | {m['backward_transfer']:+.2f} | {lam:g}"
    R = history_or_record.accuracy_matrix
    return f"{metrics.average_accuracy(R):.2f} | {metrics.backward_transfer(R):+.2f} | {lam:g}"


def comparison_markdown(results, config, profile):
    """Two markdown tables. Like with like: this notebook's runs (the paper protocol at the profile's
    sizes and lambdas) beside the shipped full run of the same protocol. Then HW14's own protocol: the
    TA's table beside the shipped full run of the sample code's protocol."""
    paper, hw14 = precomputed("paper"), precomputed("hw14")
    n = paper["environment"]["training_samples_per_task"]
    rows = [f"**The paper protocol** (empirical Fisher): this notebook's runs ({profile} profile) and the shipped "
            f"full run (5 tasks x 10 epochs, Adam 1e-4, {n:,} training images per task, its own lambdas)", "",
            "| method | this notebook: average accuracy | BWT | lambda | full run: average accuracy | BWT | lambda |",
            "|---|---|---|---|---|---|---|"]
    for m in HW14_METHODS:
        mine = _cells(results[m], config.lam(m)) if m in results else "not trained | | "
        full = paper["methods"][m]
        rows.append(f"| {m} | {mine} | {_cells(full, full['lambda'])} |")
    n = hw14["environment"]["training_samples_per_task"]
    rows += ["", f"**HW14's protocol** (the sample code: test-set importances, batch-mean statistics, HW14's lambdas): "
             f"the TA's table (60,000 training images per task) and the shipped full run ({n:,} per task)", "",
             "| method | HW14 TA: average accuracy | full run: average accuracy | BWT |", "|---|---|---|---|"]
    for m, ta in HW14_TA_RESULTS.items():
        k = hw14["methods"][m]["metrics"]
        rows.append(f"| {m} | {ta:.2f} | {k['average_accuracy']:.2f} | {k['backward_transfer']:+.2f} |")
    return "\n".join(rows)


def lambdas_markdown(config):
    """A markdown table of the lambdas: HW14's, this run profile's and the shipped paper run's."""
    paper = precomputed("paper")["methods"]
    rows = ["| method | HW14's sample code (`hw14` protocol, no 1/2) | this notebook (`paper`, this profile) | "
            "shipped full run (`paper`) |", "|---|---|---|---|"]
    rows += [f"| {m} | {HW14_LAMBDAS[m]:g} | {config.lam(m):g} | {paper[m]['lambda']:g} |" for m in REGULARISED]
    return "\n".join(rows)


def full_runs(protocol):
    """{method: History} of the shipped full run of `protocol` (hw14 or paper)."""
    return histories(precomputed(protocol))


def full_run_title(protocol):
    """What a figure of the shipped full run of `protocol` shows, its training set's size included."""
    data = precomputed(protocol)
    cfg, n = data["config"], data["environment"]["training_samples_per_task"]
    return (f"{protocol} protocol, shipped full run: {cfg['tasks']} tasks x {cfg['epochs']} epochs, "
            f"{n:,} training images per task")
