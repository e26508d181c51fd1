from cl_course.plots import plot_accuracy_matrix, plot_average_accuracy, plot_forgetting_curves
from cl_course.train import History


def history():
    # 3 tasks x 2 epochs; task j appears from epoch 2j on
    epochs = [[90.0], [92.0], [80.0, 91.0], [75.0, 93.0], [70.0, 85.0, 90.0], [68.0, 84.0, 94.0]]
    R = [[92.0, 10.0, 9.0], [75.0, 93.0, 12.0], [68.0, 84.0, 94.0]]
    return History(epoch_accuracy=epochs, accuracy_matrix=R, initial_accuracy=[10.0, 11.0, 9.0], epochs_per_task=2)


def test_forgetting_curves_one_panel_per_method_one_line_per_task(tmp_path):
    fig = plot_forgetting_curves({"baseline": history(), "ewc": history()}, tmp_path / "f.png")
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == ["baseline", "ewc"]
    lines = panels[0].get_lines()
    curves = [ln for ln in lines if ln.get_label().startswith("task")]
    assert [len(ln.get_xdata()) for ln in curves] == [6, 4, 2]  # from the epoch each task is first trained
    assert list(curves[1].get_xdata()) == [3, 4, 5, 6] and list(curves[1].get_ydata()) == [91.0, 93.0, 85.0, 84.0]
    assert len(lines) - len(curves) == 2  # the two task boundaries
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"


def test_accuracy_matrix_heatmap(tmp_path):
    fig = plot_accuracy_matrix({"si": history()}, tmp_path / "m.png")
    ax = fig.axes[0]
    assert ax.images[0].get_array().shape == (3, 3)
    assert sorted(t.get_text() for t in ax.texts)[:2] == ["10", "12"]
    assert (tmp_path / "m.png").exists()


def test_average_accuracy_one_line_per_method(tmp_path):
    fig = plot_average_accuracy({"a": history(), "b": history()}, tmp_path / "a.png")
    labelled = [ln for ln in fig.axes[0].get_lines() if ln.get_label() in ("a", "b")]
    assert len(labelled) == 2 and list(labelled[0].get_ydata())[2] == (80 + 91) / 2
