import io

import numpy as np
import pytest
import torch
from matplotlib.colors import to_rgba

from cl_course import budget, metrics
from cl_course.config import METHODS
from cl_course.plots import (METHOD_COLOURS, forgetting_matrix, method_colour, method_marker, plot_accuracy_matrix,
                             plot_average_accuracy, plot_forgetting_curves, plot_forgetting_heatmap,
                             plot_importances, plot_lambda_sweep, plot_memory_budget)
from cl_course.train import History


def history(shift=0.0):
    # 3 tasks x 2 epochs; task j appears from epoch 2j on
    epochs = [[90.0], [92.0], [80.0, 91.0], [75.0, 93.0], [70.0, 85.0, 90.0], [68.0, 84.0, 94.0]]
    R = [[92.0, 10.0, 9.0], [75.0, 93.0, 12.0], [68.0, 84.0, 94.0]]
    epochs = [[a + shift for a in e] for e in epochs]
    R = [[a + shift if j <= i else a for j, a in enumerate(row)] for i, row in enumerate(R)]
    return History(epoch_accuracy=epochs, accuracy_matrix=R, initial_accuracy=[10.0, 11.0, 9.0], epochs_per_task=2)


def results():
    return {"baseline": history(-8), "ewc": history(), "si": history(2), "joint": history(3)}


def drawn(fig):
    fig.savefig(io.BytesIO())  # lays the figure out, so window extents are final
    return fig


def legends(fig):
    """The figure's legends, its subfigures' included."""
    return fig.legends + [legend for sub in fig.subfigs for legend in legends(sub)]


def titles(fig):
    """The Text of the figure's title (suptitle) and of each panel's."""
    return [t for t in fig.texts if t.get_text() and t.get_text() == fig.get_suptitle()] + \
        [ax.title for ax in fig.axes if ax.get_title()]


def assert_legend_clear_of_axes(fig):
    drawn(fig)
    (legend,) = legends(fig)
    box = legend.get_window_extent()
    for ax in fig.axes:
        assert not box.overlaps(ax.get_window_extent()), f"the legend covers {ax.get_title() or 'an axes'}"


def assert_titles_whole_and_clear_of_the_legend(fig):
    """In the rendered figure: no title overlaps the legend, and titles and legend lie inside the figure
    (a title wider than the figure would be cut at its edges)."""
    drawn(fig)
    (legend,) = legends(fig)
    box = legend.get_window_extent()
    page = fig.bbox
    assert page.containsx(box.x0) and page.containsx(box.x1) and page.containsy(box.y0) and page.containsy(box.y1)
    assert titles(fig), "expected titles"
    for title in titles(fig):
        extent = title.get_window_extent()
        assert not box.overlaps(extent), f"the legend cuts the title {title.get_text()!r}"
        assert extent.x0 >= page.x0 and extent.x1 <= page.x1 and extent.y1 <= page.y1, \
            f"the title {title.get_text()!r} runs off the figure"


def same_colour(a, b):
    return to_rgba(a) == to_rgba(b)


def test_every_method_has_its_own_colour_and_marker():
    assert METHOD_COLOURS.keys() == set(METHODS)
    assert len(set(METHOD_COLOURS.values())) == len(METHOD_COLOURS)
    assert len({method_marker(m) for m in METHOD_COLOURS}) == len(METHODS)
    assert method_marker("my_method") not in {method_marker(m) for m in METHODS}
    assert method_colour("my_method") == method_colour("my_method")  # spare colours: deterministic
    assert method_colour("my_method") not in METHOD_COLOURS.values()


def test_forgetting_curves_one_panel_per_method_one_line_per_task(tmp_path):
    fig = plot_forgetting_curves({"baseline": history(), "ewc": history()}, tmp_path / "f.png", title="quick")
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == ["baseline", "ewc"]
    assert fig.get_suptitle() == "quick"
    lines = panels[0].get_lines()
    curves = [ln for ln in lines if ln.get_label().startswith("task")]
    assert [len(ln.get_xdata()) for ln in curves] == [6, 4, 2]  # from the epoch each task is first trained
    assert list(curves[1].get_xdata()) == [3, 4, 5, 6] and list(curves[1].get_ydata()) == [91.0, 93.0, 85.0, 84.0]
    (average,) = [ln for ln in lines if ln.get_label() == "average (baseline)"]
    assert list(average.get_ydata()) == history().average_accuracy
    assert average.get_linewidth() > max(ln.get_linewidth() for ln in curves)
    assert len(lines) - len(curves) - 1 == 2  # the two task boundaries
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"


def test_forgetting_curves_share_one_y_range():
    fig = plot_forgetting_curves(results())
    limits = {ax.get_ylim() for ax in fig.axes}
    assert len(limits) == 1
    low, high = limits.pop()
    assert low <= 68 - 8 and high >= 94 + 3  # every method's curves fit in it


def test_forgetting_curves_in_full_range_share_0_to_100_whatever_the_accuracies():
    high = {"ewc": history(8), "si": history(9)}  # 76-100: the automatic range starts at 70
    assert plot_forgetting_curves(high).axes[0].get_ylim() == (70, 100)
    low = {"baseline": history(-60)}  # down to 8
    for results in (high, low):
        fig = plot_forgetting_curves(results, title="task-IL", full_range=True)
        assert [ax.get_ylim() for ax in fig.axes] == [(0, 100)] * len(results)


LONG = "paper protocol, shipped full run: 5 tasks x 10 epochs, 24,680 training images per task"


@pytest.mark.parametrize("title", ["baseline, task-IL", LONG])
def test_titles_stay_clear_of_the_legend_in_every_figure_with_one(title):
    R = results()
    assert_titles_whole_and_clear_of_the_legend(plot_forgetting_curves({"baseline": history()}, title=title))
    assert_titles_whole_and_clear_of_the_legend(plot_forgetting_curves(R, title=title, full_range=True))
    assert_titles_whole_and_clear_of_the_legend(plot_average_accuracy(R, title=title))
    assert_titles_whole_and_clear_of_the_legend(plot_lambda_sweep("ewc", [1, 10], [history(), history(1)], title=title))
    assert_titles_whole_and_clear_of_the_legend(plot_importances(importances(), title=title))
    sweep = budget.BudgetSweep("quick", (100, 1000), (1, 2), {"random": {100: (50.0, 52.0), 1000: (80.0, 84.0)}},
                               {1000: (90.0, 92.0)}, 1.0)
    assert_titles_whole_and_clear_of_the_legend(plot_memory_budget(sweep, title=title))
    assert_titles_whole_and_clear_of_the_legend(plot_memory_budget(sweep))  # its own title, longer than the figure


def test_legends_stay_outside_the_axes():
    R = results()
    assert_legend_clear_of_axes(plot_forgetting_curves(R))
    assert_legend_clear_of_axes(plot_average_accuracy(R))
    assert_legend_clear_of_axes(plot_lambda_sweep("ewc", [1, 10, 100], [history(), history(1), history(2)]))
    assert_legend_clear_of_axes(plot_importances(importances()))


def test_a_method_keeps_its_colour_across_figures():
    R = results()
    forgetting = {ln.get_label(): ln.get_color() for ax in plot_forgetting_curves(R).axes for ln in ax.get_lines()}
    average = {ln.get_label(): ln.get_color() for ln in plot_average_accuracy(R).axes[0].get_lines()}
    sweep = plot_lambda_sweep("si", [1, 10], [history(), history(1)])
    for m in R:
        assert same_colour(forgetting[f"average ({m})"], method_colour(m))
        assert same_colour(average[m], method_colour(m))
    assert all(same_colour(ln.get_color(), method_colour("si")) for ax in sweep.axes for ln in ax.get_lines()
               if not ln.get_label().startswith("_"))
    assert not same_colour(method_colour("baseline"), method_colour("ewc"))


def test_average_accuracy_one_line_per_method_shifted_apart(tmp_path):
    fig = plot_average_accuracy({"ewc": history(), "mas": history()}, tmp_path / "a.png", title="paper protocol")
    labelled = [ln for ln in fig.axes[0].get_lines() if ln.get_label() in ("ewc", "mas")]
    assert len(labelled) == 2 and list(labelled[0].get_ydata())[2] == (80 + 91) / 2
    assert fig.get_suptitle() == "paper protocol" and fig.axes[0].get_title() == "Average accuracy over training"
    shifts = [np.asarray(ln.get_xdata()) - np.arange(1, 7) for ln in labelled]
    assert shifts[0][0] != shifts[1][0] and all(abs(s).max() <= 0.5 for s in shifts)
    assert np.ptp(shifts[0]) == pytest.approx(0)  # one shift per method, the same at every epoch
    assert labelled[0].get_marker() != labelled[1].get_marker()


def realistic_history():
    R = [[97.0, 12.0, 11.0, 10.0], [90.0, 96.0, 13.0, 9.0], [80.0, 88.0, 95.0, 11.0], [65.0, 79.0, 90.0, 96.0]]
    return History(epoch_accuracy=[row[:i + 1] for i, row in enumerate(R)], accuracy_matrix=R,
                   initial_accuracy=[10.0] * 4, epochs_per_task=1)


def test_accuracy_matrix_scale_separates_the_trained_entries(tmp_path):
    fig = plot_accuracy_matrix({"si": realistic_history()}, tmp_path / "m.png", title="t")
    ax = fig.axes[0]
    image = ax.images[0]
    assert image.get_array().shape == (4, 4)
    assert 60 <= image.norm.vmin < 65 and image.norm.vmax == 100  # lowest trained entry 65
    mask = np.ma.getmaskarray(image.get_array())
    assert mask.tolist() == np.triu(np.ones((4, 4), dtype=bool), 1).tolist()  # untrained tasks masked
    texts = sorted(t.get_text() for t in ax.texts)
    assert len(texts) == 16 and texts[:3] == ["10", "11", "11"]  # masked cells still annotated
    assert (tmp_path / "m.png").exists()


def test_accuracy_matrix_text_contrasts_with_its_cell():
    ax = plot_accuracy_matrix({"si": realistic_history()}).axes[0]
    colour = {t.get_text(): t.get_color() for t in ax.texts}
    assert colour["65"] == "white" and colour["97"] == "black"  # viridis: dark at the bottom, yellow at the top


def test_forgetting_heatmap_values_are_the_drop_since_training():
    R = realistic_history().accuracy_matrix
    fig = plot_forgetting_heatmap({"si": realistic_history(), "ewc": history()}, title="t")
    F = fig.axes[0].images[0].get_array()
    for i in range(4):
        for j in range(4):
            if j <= i:
                assert F[i, j] == pytest.approx(R[i][j] - R[j][j])
            else:
                assert F.mask[i, j]
    shown = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in fig.axes[0].texts}
    assert shown == {(i, j): f"{R[i][j] - R[j][j]:.1f}" for i in range(4) for j in range(i + 1)}  # none above
    assert shown[3, 0] == "-32.0" and shown[2, 2] == "0.0"
    norms = [ax.images[0].norm for ax in fig.axes[:2]]
    assert norms[0].vmin == norms[1].vmin == -norms[0].vmax == -32  # one symmetric scale for both panels
    assert norms[0].vcenter == 0


def test_forgetting_matrix_of_a_run_still_training():
    F = forgetting_matrix([[90.0, 10.0, 9.0], [80.0, 95.0, 12.0]])  # two of three tasks done
    assert F.shape == (2, 2) and F[1, 0] == -10 and F[0, 0] == F[1, 1] == 0 and F.mask[0, 1]


def test_lambda_sweep_log_axis_at_the_lambdas():
    lambdas = [100, 1, 10]
    histories = [history(2), history(), history(1)]
    fig = plot_lambda_sweep("ewc", lambdas, histories, title="quick")
    left, right = fig.axes[:2]
    for ax in (left, right):
        assert ax.get_xscale() == "log"
        assert list(ax.get_xticks()) == [1, 10, 100]
        assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "10", "100"]
    final, newest = [ln for ln in left.get_lines() if not ln.get_label().startswith("_")]
    assert list(final.get_xdata()) == [1, 10, 100]
    assert list(final.get_ydata()) == [metrics.average_accuracy(histories[i].accuracy_matrix) for i in (1, 2, 0)]
    assert list(newest.get_ydata()) == [94, 95, 96]
    bwt = [ln for ln in right.get_lines() if ln.get_label() == "BWT"][0]
    assert list(bwt.get_ydata()) == pytest.approx([metrics.backward_transfer(h.accuracy_matrix) for h in histories])
    with pytest.raises(ValueError):
        plot_lambda_sweep("ewc", [0, 1], [history(), history()])


def importances():
    g = torch.Generator().manual_seed(0)
    base = {"fc1.weight": torch.rand(6, 8, generator=g), "fc1.bias": torch.rand(6, generator=g),
            "heads.0.weight": torch.rand(4, 6, generator=g), "heads.0.bias": torch.zeros(4),
            "heads.1.weight": torch.rand(4, 6, generator=g), "heads.1.bias": torch.zeros(4)}
    base["fc1.weight"][:2] = 0  # dead units: exact zeros
    return {"ewc": base, "mas": {n: t.sqrt() * 10 for n, t in base.items()},
            "si": {n: t - 0.3 for n, t in base.items()},  # SI's Omega can be negative
            "scp": {n: torch.rand(t.shape, generator=g) for n, t in base.items()}}


def test_importances_histograms_per_layer_and_the_correlation_matrix(tmp_path):
    imp = importances()
    fig = plot_importances(imp, tmp_path / "i.png", title="t")
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == ["fc1", "heads", "Spearman rank correlation"]
    assert len(panels[0].patches) == 4  # one step histogram per method
    matrix = panels[2]
    assert matrix.images[0].get_array().shape == (4, 4)
    methods = list(imp)
    shown = {(round(t.get_position()[1]), round(t.get_position()[0])): float(t.get_text()) for t in matrix.texts}
    for (m1, m2), rho in metrics.importance_correlations(imp).items():
        i, j = methods.index(m1), methods.index(m2)
        assert shown[i, j] == shown[j, i] == pytest.approx(rho, abs=0.005)
    assert shown[0, 0] == 1
    legend = [t.get_text() for t in legends(fig)[0].get_texts()]
    assert legend[2].startswith("si:") and "< 0" in legend[2] and "< 0" not in legend[0]
    assert (tmp_path / "i.png").exists()
