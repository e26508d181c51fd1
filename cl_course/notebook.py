"""What the course notebook calls: start-up, training one method with the notebook's answers,
showing figures, and the closing comparison. The logic lives here; the notebook explains and plots."""
import io
from dataclasses import replace

import torch

from . import EDITION, __version__, selfcheck
from .config import HW14_TA_RESULTS, METHODS
from .data import data_root
from .profiles import COSTS, PROFILE_VARIABLE, profile_config, profile_name
from .report import histories, precomputed
from .train import load_tasks, run_methods, select_device


def welcome(profile):
    """The first cell's report: versions, the device, and what the chosen profile costs."""
    device = select_device()
    gpu = f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""
    print(f"cl_course {__version__} ({EDITION} edition), torch {torch.__version__}, device: {device}{gpu}")
    name = profile_name(profile)
    source = f"from {PROFILE_VARIABLE}" if name != profile else "PROFILE above"
    print(f"Profile {name} ({source}): {COSTS[name]}.")
    if device.type == "cpu":
        print("No GPU: the quick profile is the one to use here.")
    elif name == "quick":
        print(f'With this GPU you may choose PROFILE = "full": {COSTS["full"]}. To use it, set it in this cell '
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
    print("lambdas: " + ", ".join(f"{m} {config.lam(m):g}" for m in METHODS if m != "baseline"))
    return config, tasks


def train(method, config, tasks, **answers):
    """Train `method` on `tasks` with the notebook's functions (`answers`, by library name, e.g.
    fisher_diagonal=fisher_diagonal); returns its train.History.

    Each function first runs its self-check on the training device, so that an unwritten or wrong one
    stops here within a second rather than after minutes of training."""
    device = tasks[0].x_train.device
    for name, function in answers.items():
        try:
            selfcheck.check(name, function, verbose=False, device=device)
        except NotImplementedError:
            raise NotImplementedError(f"{method} cannot train yet: {name} is not written (fill in its cell above "
                                      "and run it)") from None
        except selfcheck.SelfCheckError as e:
            raise selfcheck.SelfCheckError(f"{method} will not train with this {name}, which fails its self-check "
                                           f"on {device}: {e}") from None
        except Exception as e:
            if hasattr(e, "add_note"):  # Python 3.11+
                e.add_note(f"(raised by your {name} on the self-check's fixture on {device}, before training {method})")
            raise
    try:
        return run_methods(replace(config, methods=(method,)), tasks, answers=answers or None)[method]
    except NotImplementedError as e:
        needs = ", ".join(answers) or "its functions"
        raise NotImplementedError(f"{method} cannot train yet: {needs} must be written first "
                                  f"({str(e) or 'a cell above still raises NotImplementedError'})") from None


def show(fig):
    """Display a matplotlib Figure as a PNG (works in JupyterLab, Colab and ipywidgets.Output)."""
    from IPython.display import Image, display
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    display(Image(buffer.getvalue()))


def comparison_markdown(results, profile):
    """A markdown table: this notebook's average accuracy after the last task beside the HW14 TA's
    and the shipped full runs of both protocols."""
    full = {p: {m: r["metrics"]["average_accuracy"] for m, r in precomputed(p)["methods"].items()}
            for p in ("hw14", "paper")}
    rows = ["| method | this notebook (" + profile + ") | HW14 TA | hw14 protocol, full run | "
            "paper protocol, full run |", "|---|---|---|---|---|"]
    for m in METHODS:
        mine = f"{results[m].average_accuracy[-1]:.2f}" if m in results else "not trained"
        # the paper run has no baseline: without a penalty both protocols train alike
        cells = [f"{full[p].get(m, full['hw14'][m]):.2f}" for p in ("hw14", "paper")]
        rows.append(f"| {m} | {mine} | {HW14_TA_RESULTS[m]:.2f} | {cells[0]} | {cells[1]} |")
    return "\n".join(rows)


def full_runs(protocol):
    """{method: History} of the shipped full run of `protocol` (hw14 or paper)."""
    return histories(precomputed(protocol))
