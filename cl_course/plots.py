"""Figures from run histories ({method: train.History}); each function returns a Figure and
saves it as PNG when given a path. Uses matplotlib's object API, so it needs no GUI backend."""
from matplotlib.figure import Figure


def _grid(n, width=4.2, height=3.2):
    cols = min(n, 3)
    rows = -(-n // cols)
    fig = Figure(figsize=(width * cols, height * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes


def _save(fig, path):
    if path:
        fig.savefig(path, dpi=110)
    return fig


def _mark_tasks(ax, history):
    for k in range(1, len(history.accuracy_matrix) or 1):
        ax.axvline(k * history.epochs_per_task + 0.5, color="grey", lw=0.8, ls="--")


def plot_forgetting_curves(results, path=None):
    """Accuracy on each task after every epoch, from the epoch it is first trained; dashed lines
    mark task boundaries. One panel per method."""
    fig, axes = _grid(len(results))
    for ax, (method, h) in zip(axes, results.items(), strict=False):
        E = h.epochs_per_task
        for j in range(len(h.epoch_accuracy[-1])):
            epochs = [e for e in range(len(h.epoch_accuracy)) if len(h.epoch_accuracy[e]) > j]
            ax.plot([e + 1 for e in epochs], [h.epoch_accuracy[e][j] for e in epochs], marker="o", markersize=3,
                    label=f"task {j + 1}")
        _mark_tasks(ax, h)
        ax.set(title=method, xlabel=f"epoch ({E} per task)", ylabel="test accuracy (%)")
        ax.set_xlim(0.5, len(h.epoch_accuracy) + 0.5)
        ax.legend(fontsize=7, loc="lower left")
    return _save(fig, path)


def plot_accuracy_matrix(results, path=None):
    """Heatmap of R[i][j]: accuracy on task j (column) after training task i (row)."""
    fig, axes = _grid(len(results), 3.6, 3.2)
    for ax, (method, h) in zip(axes, results.items(), strict=False):
        R = h.accuracy_matrix
        im = ax.imshow(R, vmin=0, vmax=100, cmap="viridis")
        for i, row in enumerate(R):
            for j, v in enumerate(row):
                ax.text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=8, color="white" if v < 60 else "black")
        ticks = range(len(R[0]))
        ax.set_xticks(ticks, [str(j + 1) for j in ticks])
        ax.set_yticks(range(len(R)), [str(i + 1) for i in range(len(R))])
        ax.set(title=method, xlabel="evaluated on task", ylabel="after training task")
    fig.colorbar(im, ax=list(axes[:len(results)]), shrink=0.8, label="accuracy (%)")
    return _save(fig, path)


def plot_average_accuracy(results, path=None):
    """HW14's figure: mean accuracy over the tasks seen so far after every epoch, one line per method."""
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.subplots()
    for method, h in results.items():
        ax.plot(range(1, len(h.average_accuracy) + 1), h.average_accuracy, marker="o", markersize=3, label=method)
    _mark_tasks(ax, next(iter(results.values())))
    ax.set(xlabel="epoch", ylabel="average accuracy on seen tasks (%)", title="Average accuracy over training")
    ax.legend()
    return _save(fig, path)


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
