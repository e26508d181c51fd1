"""Figures from run histories ({method: train.History}); each function returns a Figure and
saves it as PNG when given a path. Uses matplotlib's object API, so it needs no GUI backend.

Every method keeps one colour and one marker in all figures (METHOD_COLOURS, METHOD_MARKERS), so
a reader can follow e.g. EWC from the forgetting curves to the final comparison."""
import math
import zlib

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import Normalize, TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from . import metrics, registry

# From each method's registry row
METHOD_COLOURS = {m.name: m.colour for m in registry.ROWS}
METHOD_MARKERS = {m.name: m.marker for m in registry.ROWS}
# For methods outside the registry: picked by a checksum of the name, which (unlike hash()) is the
# same in every Python process, so a student's own method keeps its colour between sessions.
_SPARE_COLOURS = ("#393b79", "#637939", "#843c39", "#7b4173", "#5254a3", "#8ca252", "#bd9e39", "#ad494a")
_SPARE_MARKERS = ("1", "2", "3", "4", "+", "x", "|")
UNTRAINED = "#d0d0d0"  # heatmap cells of tasks not trained yet: grey, unlike any colour of the scales
TASK_CMAP = "viridis"  # the tasks inside a panel; thin lines, so the method's thick line stands out


def _pick(name, spare):
    return spare[zlib.crc32(name.encode()) % len(spare)]


def method_colour(method):
    """The method's colour in every figure (a fixed spare colour for names outside METHOD_COLOURS)."""
    return METHOD_COLOURS.get(method) or _pick(method, _SPARE_COLOURS)


def method_marker(method):
    return METHOD_MARKERS.get(method) or _pick(method, _SPARE_MARKERS)


def _figure(figsize):
    """A figure whose panels, colour bars and legend live in one subfigure (_body) under the figure's
    title: a legend right of the panels then starts below the title, where it cannot cut it."""
    fig = Figure(figsize=figsize, layout="constrained")
    fig.subfigures()
    return fig


def _body(fig):
    return fig.subfigs[0]


def _grid(n, width=4.2, height=3.2, **kwargs):
    cols = min(n, 3)
    rows = -(-n // cols)
    fig = _figure((width * cols, height * rows))
    axes = _body(fig).subplots(rows, cols, squeeze=False, **kwargs).ravel()
    for ax in axes[n:]:
        ax.remove()  # removed rather than hidden: fig.axes is then what the reader sees
    return fig, axes[:n]


def _save(fig, path):
    if path:
        fig.savefig(path, dpi=110)
    return fig


def _title(fig, title):
    if title:
        fig.suptitle(title, wrap=True)  # wrapped: a title wider than the figure would be cut at its edges


def _legend_outside(fig, handles=None, labels=None, **kwargs):
    """One legend for the whole figure, right of all panels, where it cannot hide a curve."""
    if handles is None:
        handles, labels = [], []
        for ax in fig.axes:
            for h, label in zip(*ax.get_legend_handles_labels(), strict=True):
                if label not in labels:
                    handles.append(h)
                    labels.append(label)
    return _body(fig).legend(handles, labels, loc="outside right upper", fontsize=8, **kwargs)


def _mark_tasks(ax, history):
    for k in range(1, len(history.accuracy_matrix) or 1):
        ax.axvline(k * history.epochs_per_task + 0.5, color="grey", lw=0.8, ls="--")


def _task_curve(h, j):
    """(epochs, accuracies) of task j from the epoch it is first trained on (epochs 1-based)."""
    epochs = [e for e in range(len(h.epoch_accuracy)) if len(h.epoch_accuracy[e]) > j]
    return [e + 1 for e in epochs], [h.epoch_accuracy[e][j] for e in epochs]


def _accuracy_floor(values, step=5, top=100, margin=0.0):
    """A multiple of `step` below min(values) by more than `margin`, so every value gets a visible
    colour or height."""
    low = min(values, default=0) - margin
    return max(0, min(top - step, step * math.floor(low / step - 1e-9)))


def plot_forgetting_curves(results, path=None, title=None, full_range=False):
    """Accuracy on each task after every epoch, from the epoch it is first trained, and (thick, in
    the method's colour) the average over the tasks seen so far; dashed lines mark task boundaries.
    One panel per method, all on the same y range so the panels compare at a glance: from a multiple
    of 5 below the lowest accuracy to 100, or with full_range=True the whole 0-100, so that figures
    of different ranges (lesson 2's scenarios: task-IL 90-100, class-IL 0-100) compare too."""
    fig, axes = _grid(len(results), sharey=True)
    seen = [a for h in results.values() for e in h.epoch_accuracy for a in e]
    n_tasks = max((len(h.epoch_accuracy[-1]) for h in results.values() if h.epoch_accuracy), default=1)
    task_colours = colormaps[TASK_CMAP](np.linspace(0, 0.9, max(n_tasks, 2)))  # 0.9: skip the pale yellow
    for ax, (method, h) in zip(axes, results.items(), strict=True):
        for j in range(len(h.epoch_accuracy[-1]) if h.epoch_accuracy else 0):
            # clip_on=False: a marker at 100% is drawn whole, not cut by the top of the axes
            ax.plot(*_task_curve(h, j), marker="o", markersize=2.5, lw=1, color=task_colours[j], label=f"task {j + 1}",
                    clip_on=False)
        epochs = range(1, len(h.average_accuracy) + 1)
        ax.plot(epochs, h.average_accuracy, lw=2.8, color=method_colour(method), label=f"average ({method})",
                clip_on=False)
        _mark_tasks(ax, h)
        ax.set_title(method, color=method_colour(method), fontweight="bold")
        ax.set(xlabel=f"epoch ({h.epochs_per_task} per task)")
        ax.set_xlim(0.5, len(h.epoch_accuracy) + 0.5)
        ax.grid(alpha=0.3)
    # sharey: one range for all; margin: the lowest markers stay whole
    axes[0].set_ylim(0 if full_range else _accuracy_floor(seen, margin=1.5), 100)
    for ax in axes[::min(len(axes), 3)]:
        ax.set_ylabel("test accuracy (%)")
    _legend_outside(fig)
    _title(fig, title)
    return _save(fig, path)


def _offsets(n, spread=0.5, step=0.15):
    """Horizontal shifts (in epochs) that keep n lines with equal values side by side: `step` apart,
    but all within +-spread/2 so a line stays within its epoch."""
    step = min(step, spread / (n - 1)) if n > 1 else 0.0
    return [(i - (n - 1) / 2) * step for i in range(n)]


def plot_average_accuracy(results, path=None, title=None):
    """HW14's figure: mean accuracy over the tasks seen so far after every epoch, one line per method
    in its colour and marker, each shifted slightly sideways so none hides under another."""
    fig = _figure((9, 4.5))
    ax = _body(fig).subplots()
    for (method, h), dx in zip(results.items(), _offsets(len(results)), strict=True):
        ax.plot([e + 1 + dx for e in range(len(h.average_accuracy))], h.average_accuracy, lw=1.4,
                color=method_colour(method), marker=method_marker(method), markersize=4, label=method)
    _mark_tasks(ax, next(iter(results.values())))
    ax.set(xlabel="epoch (methods shifted sideways slightly to stay visible)",
           ylabel="average accuracy on seen tasks (%)", title="Average accuracy over training")
    ax.grid(alpha=0.3)
    _legend_outside(fig)
    _title(fig, title)
    return _save(fig, path)


def _trained(R):
    """R as an array with the entries of tasks not yet trained (above the diagonal) masked."""
    R = np.asarray(R, dtype=float)
    return np.ma.masked_array(R, mask=np.triu(np.ones(R.shape, dtype=bool), 1))


def _readable_on(cmap, norm, value):
    """Black or white text, whichever contrasts with the cell's colour (by its luminance)."""
    r, g, b, _ = cmap(norm(value))
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"


def _label_tasks(ax, shape):
    ax.set_xticks(range(shape[1]), [str(j + 1) for j in range(shape[1])])
    ax.set_yticks(range(shape[0]), [str(i + 1) for i in range(shape[0])])
    ax.set(xlabel="evaluated on task", ylabel="after training task")


def plot_accuracy_matrix(results, path=None, title=None):
    """Heatmap of R[i][j]: accuracy on task j (column) after training task i (row). The colour scale
    runs from a multiple of 5 below the lowest trained entry (i >= j) to the first multiple of 5 at or
    above the highest (at most 100), so the 65-97% that matter are told apart; tasks not yet trained
    (above the diagonal, chance level) are grey but still annotated."""
    fig, axes = _grid(len(results), 3.6, 3.2)
    matrices = {m: _trained(h.accuracy_matrix) for m, h in results.items()}
    trained = [v for R in matrices.values() for v in R.compressed()]
    top = min(100, 5 * math.ceil(max(trained, default=100) / 5))  # a short run that tops out at 90 uses the yellows
    norm = Normalize(_accuracy_floor(trained, top=top), top)
    cmap = colormaps["viridis"].with_extremes(bad=UNTRAINED)
    for ax, (method, R) in zip(axes, matrices.items(), strict=True):
        im = ax.imshow(R, norm=norm, cmap=cmap)
        for (i, j), v in np.ndenumerate(R.data):
            colour = "#555555" if R.mask[i, j] else _readable_on(cmap, norm, v)
            ax.text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=8, color=colour)
        _label_tasks(ax, R.shape)
        ax.set_title(method, color=method_colour(method), fontweight="bold")
    _body(fig).colorbar(im, ax=list(axes), shrink=0.8, label="accuracy (%); grey: not trained yet")
    _title(fig, title)
    return _save(fig, path)


def forgetting_matrix(R):
    """F[i][j] = R[i][j] - R[j][j] for i >= j (the change on task j since just after training it;
    0 on the diagonal), masked above the diagonal. Square: the trained rows of R."""
    R = np.asarray(R, dtype=float)
    n = len(R)
    F = R[:, :n] - np.diag(R[:, :n])[None, :]
    return np.ma.masked_array(F, mask=np.triu(np.ones((n, n), dtype=bool), 1))


def plot_forgetting_heatmap(results, path=None, title=None):
    """Per method, F[i][j] = R[i][j] - R[j][j]: how much of task j was lost (red) or gained (blue)
    by the end of task i. One symmetric colour scale, centred at 0, shared by all panels."""
    fig, axes = _grid(len(results), 3.6, 3.2)
    matrices = {m: forgetting_matrix(h.accuracy_matrix) for m, h in results.items()}
    limit = max([abs(v) for F in matrices.values() for v in F.compressed()] + [1.0])  # 1: an all-zero F still draws
    norm = TwoSlopeNorm(0, -limit, limit)
    cmap = colormaps["RdBu"].with_extremes(bad=UNTRAINED)
    for ax, (method, F) in zip(axes, matrices.items(), strict=True):
        im = ax.imshow(F, norm=norm, cmap=cmap)
        for (i, j), v in np.ndenumerate(F.data):
            if not F.mask[i, j]:
                ax.text(j, i, f"{v:.1f}", ha="center", va="center", fontsize=8, color=_readable_on(cmap, norm, v))
        _label_tasks(ax, F.shape)
        ax.set_title(method, color=method_colour(method), fontweight="bold")
    _body(fig).colorbar(im, ax=list(axes), shrink=0.8, label="R[i][j] - R[j][j] (points); red: forgotten")
    _title(fig, title)
    return _save(fig, path)


def plot_lambda_sweep(method, lambdas, histories, path=None, title=None):
    """One method run with several lambdas (histories in the same order): left, the final average
    accuracy and the newest task's final accuracy R[T-1][T-1] (plasticity); right, BWT (stability).
    Log-scale lambda axis, ticks at the lambdas run."""
    if len(lambdas) != len(histories):
        raise ValueError(f"{len(lambdas)} lambdas but {len(histories)} histories")
    if any(lam <= 0 for lam in lambdas):
        raise ValueError("a log-scale lambda axis needs lambdas > 0")
    order = np.argsort(lambdas)  # a line through unsorted points would zigzag
    lams = [lambdas[i] for i in order]
    Rs = [histories[i].accuracy_matrix for i in order]
    colour, marker = method_colour(method), method_marker(method)
    fig = _figure((10, 4))
    left, right = _body(fig).subplots(1, 2)
    left.plot(lams, [metrics.average_accuracy(R) for R in Rs], color=colour, marker=marker,
              label="final average accuracy")
    left.plot(lams, [R[-1][-1] for R in Rs], color=colour, marker=marker, ls="--", markerfacecolor="white",
              label="newest task, final accuracy")
    right.plot(lams, [metrics.backward_transfer(R) for R in Rs], color=colour, marker=marker, label="BWT")
    right.axhline(0, color="grey", lw=0.8)
    left.set(ylabel="test accuracy (%)", title="accuracy (plasticity: newest task)")
    right.set(ylabel="BWT (points; negative = forgetting)", title="backward transfer (stability)")
    for ax in (left, right):
        ax.set_xscale("log")
        ax.set_xticks(lams, [f"{lam:g}" for lam in lams])
        ax.minorticks_off()  # only the lambdas that were run
        ax.set_xlabel(f"lambda ({method})")
        ax.grid(alpha=0.3)
    _legend_outside(fig)
    _title(fig, f"{method}: lambda sweep" + (f", {title}" if title else ""))
    return _save(fig, path)


def _layer(name):
    """fc1.weight -> fc1; every head (heads.0.weight, heads.3.bias) -> heads."""
    prefix = name.rsplit(".", 1)[0]
    return "heads" if prefix.startswith("heads.") else prefix


def _importance_legend(method, values):
    zero = float((values == 0).mean())
    negative = float((values < 0).mean())
    parts = ([f"{100 * negative:.1f}% < 0"] if negative else []) + [f"{100 * zero:.1f}% = 0 (not shown)"]
    return f"{method}: {', '.join(parts)}"


def plot_importances(importances, path=None, title=None):
    """importances = {method: {parameter name: Omega}}. One panel per layer overlaying each method's
    histogram of log10|Omega| (zeros cannot be shown on a log axis; the legend gives their share,
    and for SI, whose Omega can be negative, the share of negative entries), and one panel with the
    methods' rank correlations (metrics.importance_correlations) over all parameters."""
    methods = list(importances)
    names = list(importances[methods[0]])
    layers = list(dict.fromkeys(_layer(n) for n in names))
    flat = {m: {layer: np.concatenate([importances[m][n].detach().double().cpu().numpy().ravel()
                                       for n in names if _layer(n) == layer]) for layer in layers}
            for m in methods}
    fig, axes = _grid(len(layers) + 1, 4.0, 3.2)
    for ax, layer in zip(axes, layers, strict=False):
        logs = {m: np.log10(np.abs(v[v != 0])) for m, d in flat.items() for v in [d[layer]]}
        finite = np.concatenate(list(logs.values()))
        # a few near-underflow values would stretch the axis over 10+ empty decades: they go into
        # the first bin instead
        low, high = (np.percentile(finite, 0.1), finite.max()) if finite.size else (0, 1)
        bins = np.linspace(low, max(high, low + 1e-6), 60)
        for m, values in logs.items():
            ax.hist(np.clip(values, low, high), bins=bins, histtype="step", lw=1.5, color=method_colour(m), label=m)
        ax.set(title=layer, xlabel="log10 |Omega|", ylabel="parameters")
    everything = {m: np.concatenate(list(d.values())) for m, d in flat.items()}
    handles, _ = axes[0].get_legend_handles_labels()  # one per method, in order
    _legend_outside(fig, handles, [_importance_legend(m, everything[m]) for m in methods],
                    title="histograms of |Omega|;\nthe lowest 0.1% in the first bin", title_fontsize=8)
    ax = axes[len(layers)]
    rho = importance_correlations_matrix(importances)
    im = ax.imshow(rho, vmin=-1, vmax=1, cmap=colormaps["RdBu_r"])
    for (i, j), v in np.ndenumerate(rho):
        ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=9,
                color=_readable_on(im.cmap, im.norm, v))
    ax.set_xticks(range(len(methods)), methods)
    ax.set_yticks(range(len(methods)), methods)
    for label in [*ax.get_xticklabels(), *ax.get_yticklabels()]:
        label.set_color(method_colour(label.get_text()))
    ax.set_title("Spearman rank correlation")
    _body(fig).colorbar(im, ax=ax, shrink=0.8)
    _title(fig, title)
    return _save(fig, path)


def importance_correlations_matrix(importances):
    """metrics.importance_correlations as a symmetric matrix in the methods' order (1 on the diagonal)."""
    methods = list(importances)
    rho = np.eye(len(methods))
    for (a, b), r in metrics.importance_correlations(importances).items():
        i, j = methods.index(a), methods.index(b)
        rho[i, j] = rho[j, i] = r
    return rho


def plot_digit_samples(tasks, n_tasks=3, path=None):
    """One training image per digit (columns) for each of the first `n_tasks` tasks (rows), as the
    model sees it: permuted pixels, normalised."""
    tasks = tasks[:n_tasks]
    fig = Figure(figsize=(10, 1.1 * len(tasks) + 0.4), layout="constrained")
    axes = fig.subplots(len(tasks), 10, squeeze=False)
    for row, task in zip(axes, tasks, strict=False):
        y = task.y_train.cpu()
        for digit, ax in enumerate(row):
            found = (y == digit).nonzero()
            if len(found):
                ax.imshow(task.x_train[int(found[0])].cpu().reshape(28, 28), cmap="gray")
            ax.set_xticks([])
            ax.set_yticks([])
            if ax is row[0]:
                ax.set_ylabel(task.name, fontsize=8)
            if task is tasks[0]:
                ax.set_title(str(digit), fontsize=9)
    return _save(fig, path)


def plot_scenario_table(data, published, path=None, title=None):
    """table.py's results: per scenario, each method's final average accuracy (mean +- SEM over seeds,
    bars) beside the published mean (red ticks)."""
    from .data import SCENARIOS
    methods = list(data["cells"])
    fig, axes = _grid(len(SCENARIOS), width=max(4.2, 0.45 * len(methods)), height=3.4, sharey=True)
    for ax, scenario in zip(axes, SCENARIOS, strict=False):
        for i, m in enumerate(methods):
            cell = data["cells"][m].get(scenario)
            if cell is None:
                continue
            mean, sem = cell["mean_sem"]
            ax.bar(i, mean, yerr=0 if math.isnan(sem) else sem, color=method_colour(m), capsize=2)
            if m in published:
                ax.plot([i - 0.45, i + 0.45], [published[m][scenario][0]] * 2, color="red", lw=2)
        ax.set_xticks(range(len(methods)), methods, rotation=60, ha="right", fontsize=8)
        ax.set_title(f"{scenario}-incremental")
        ax.set_ylim(0, 100)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("final average accuracy (%)")
    _title(fig, title or "Split MNIST: ours (bars, mean +- SEM) and van de Ven & Tolias (red ticks)")
    return _save(fig, path)


def plot_confusion_matrices(matrices, path=None, title=None):
    """One panel per task: row = true class, column = predicted, each row in % of its test images."""
    fig, axes = _grid(len(matrices), width=3.3, height=3.0)
    for k, (ax, counts) in enumerate(zip(axes, matrices, strict=False)):
        counts = np.asarray(counts, dtype=float)
        shares = 100 * counts / np.maximum(counts.sum(1, keepdims=True), 1)
        image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=100)
        ax.set_title(f"after task {k + 1}")
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_xticks(range(len(shares)))
        ax.set_yticks(range(len(shares)))
    _body(fig).colorbar(image, ax=list(axes), label="% of the true class's test images", shrink=0.8)
    _title(fig, title)
    return _save(fig, path)


SELECTION_COLOURS = {"random": "#e377c2", "reservoir": "#1f77b4", "herding": "#2ca02c"}  # ER's pink is random's


def plot_memory_budget(sweep, path=None, title=None, published=None):
    """budget.BudgetSweep: final average accuracy of ER against its memory's total budget K (log axis), one
    line per selection rule with the SEM over seeds as error bars; iCaRL's runs and `published` points
    ({label: (K, accuracy)}) beside them. The lines are nudged apart along K so that their bars do not hide
    each other."""
    fig, (ax,) = _grid(1, width=6.2, height=3.8)
    values = []
    for i, selection in enumerate(sweep.er):
        stats = sweep.mean_sem(selection)
        nudge = 1.04 ** (i - (len(sweep.er) - 1) / 2)
        ax.errorbar([k * nudge for k in sweep.budgets], [m for m, _ in stats],
                    yerr=[0 if math.isnan(s) else s for _, s in stats], marker="o", capsize=3, lw=1.5,
                    color=SELECTION_COLOURS.get(selection, _pick(selection, _SPARE_COLOURS)), label=f"ER, {selection}")
        values += [m for m, _ in stats]
    for k, (mean, sem) in sweep.icarl_mean_sem().items():
        ax.errorbar([k], [mean], yerr=[0 if math.isnan(sem) else sem], marker=method_marker("icarl"), capsize=3,
                    color=method_colour("icarl"), ls="none", label="iCaRL (herding, nearest mean)")
        values.append(mean)
    for label, (k, accuracy) in (published or {}).items():
        ax.plot([k], [accuracy], marker="*", markersize=12, color="red", ls="none", label=label)
        values.append(accuracy)
    ax.set_xscale("log")
    ax.set_xticks(sweep.budgets, [f"{k:,}" for k in sweep.budgets])
    ax.minorticks_off()
    ax.set(xlabel="memory budget K (samples in all)", ylabel="final average accuracy (%)",
           ylim=(_accuracy_floor(values, margin=3), 100))
    ax.grid(alpha=0.3)
    _legend_outside(fig)
    seeds = len(sweep.seeds)
    _title(fig, title or f"Class-IL Split MNIST ({sweep.profile}): the memory's selection at equal budgets "
                         f"(mean +- SEM over {seeds} seeds)")
    return _save(fig, path)


def plot_capacity(capacity, accuracy, path=None, title=None):
    """PackNet with several shares: {label: [% of hidden weights still free after each task]} (lines, left) and
    {label: [final accuracy on each task]} (bars, right), where a task that found no free weight shows."""
    fig, (left, right) = _grid(2, width=4.6, height=3.4)
    labels = list(capacity)
    for i, label in enumerate(labels):
        colour = colormaps[TASK_CMAP](0.8 * i / max(len(labels) - 1, 1))
        left.plot(range(1, len(capacity[label]) + 1), capacity[label], marker="o", color=colour, label=label)
        width = 0.8 / len(labels)
        right.bar([j + 1 + (i - (len(labels) - 1) / 2) * width for j in range(len(accuracy[label]))], accuracy[label],
                  width=width, color=colour)
    left.set(xlabel="after task", ylabel="hidden weights still free (%)", ylim=(0, 100))
    right.set(xlabel="task", ylabel="final accuracy (%)",
              ylim=(_accuracy_floor([a for v in accuracy.values() for a in v], margin=2), 100))
    for ax in (left, right):
        ax.grid(alpha=0.3)
    _legend_outside(fig)
    _title(fig, title or "PackNet: the capacity left after each task, and each task's final accuracy")
    return _save(fig, path)


def plot_gates(units_on, overlap, path=None, title=None):
    """HAT's gates in one hidden layer: units_on [tasks][units] (True: the task attends to the unit) as an image,
    and overlap [tasks][tasks] (intersection over union of two tasks' units) as a heatmap."""
    fig, (left, right) = _grid(2, width=4.8, height=3.2)
    on = np.asarray(units_on, dtype=float)
    left.imshow(on, aspect="auto", cmap="Greys", vmin=0, vmax=1, interpolation="nearest")
    left.set(xlabel="hidden unit", ylabel="task", yticks=range(len(on)), yticklabels=range(1, len(on) + 1))
    left.set_title("units attended to (black)")
    image = right.imshow(np.asarray(overlap), cmap="viridis", vmin=0, vmax=1)
    n = len(overlap)
    right.set(xticks=range(n), yticks=range(n), xticklabels=range(1, n + 1), yticklabels=range(1, n + 1),
              xlabel="task", ylabel="task")
    right.set_title("overlap (intersection / union)")
    norm = Normalize(0, 1)
    for i in range(n):
        for j in range(n):
            right.text(j, i, f"{overlap[i][j]:.2f}", ha="center", va="center", fontsize=7,
                       color=_readable_on(colormaps["viridis"], norm, overlap[i][j]))
    _body(fig).colorbar(image, ax=right, shrink=0.8)
    _title(fig, title or "HAT: the units each task attends to, and how much two tasks share")
    return _save(fig, path)


def plot_turn(told, inferred, rates, path=None, title=None):
    """Final average accuracy told the task (task-IL: {method: %}) beside asked to infer it (class-IL: {method: %}),
    with how often the task was inferred right ({method: %}, printed over the class-IL bar)."""
    methods = list(dict.fromkeys((*told, *inferred)))
    fig, (ax,) = _grid(1, width=max(6.0, 0.8 * len(methods)), height=3.6)
    for i, m in enumerate(methods):
        if m in told:
            ax.bar(i - 0.2, told[m], width=0.4, color=method_colour(m), alpha=0.45)
        if m in inferred:
            ax.bar(i + 0.2, inferred[m], width=0.4, color=method_colour(m), hatch="//", edgecolor="white")
        if m in rates:
            ax.text(i + 0.2, inferred[m] + 1, f"{rates[m]:.0f}%\nright", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(methods)), methods, rotation=30, ha="right")
    ax.set(ylabel="final average accuracy (%)", ylim=(0, 110))
    ax.grid(axis="y", alpha=0.3)
    _legend_outside(fig, [Patch(color="grey", alpha=0.45), Patch(facecolor="grey", hatch="//", edgecolor="white")],
                    ["told the task (task-IL)", "task inferred (class-IL)"])
    _title(fig, title or "The turn: the same methods told the task, and asked to infer it")
    return _save(fig, path)


def plot_merge(accuracy, path=None, title=None):
    """IMM: {method: [final accuracy on each task]} as grouped bars, one group per task."""
    methods = list(accuracy)
    n = len(next(iter(accuracy.values())))
    fig, (ax,) = _grid(1, width=6.2, height=3.4)
    width = 0.8 / len(methods)
    for i, m in enumerate(methods):
        ax.bar([j + 1 + (i - (len(methods) - 1) / 2) * width for j in range(n)], accuracy[m], width=width,
               color=method_colour(m), label=m)
    ax.set(xlabel="task", ylabel="final accuracy (%)", xticks=range(1, n + 1),
           ylim=(_accuracy_floor([a for v in accuracy.values() for a in v], margin=3), 100))
    ax.grid(axis="y", alpha=0.3)
    _legend_outside(fig)
    _title(fig, title or "IMM: each task's final accuracy, the last network alone and the merges")
    return _save(fig, path)
