"""The instructor's widget demo, driven without a browser: set controls, press Run, read status and plot."""
import json

import pytest

from cl_course import demo as demo_module
from cl_course.demo import ForgettingDemo


def pngs(demo):
    return [o["data"]["image/png"] for o in demo.plot.outputs]


def test_shipped_curves_show_without_data_or_training(tmp_path, monkeypatch):
    monkeypatch.setattr(demo_module, "run_methods", lambda *a, **k: pytest.fail("trained"))
    demo = ForgettingDemo(cache_dir=tmp_path, data_root=tmp_path / "nothing here")
    assert len(pngs(demo)) == 3  # average accuracy, forgetting curves, accuracy matrix
    assert "Showing the shipped HW14 run" in demo.status.value
    # the default controls describe the shipped run, so Run shows it at once; loading is the only work
    monkeypatch.setattr(demo, "load", lambda config: [type("T", (), {"x_train": __import__("torch").zeros(24680, 1)})()])
    results = demo.run()
    assert set(results) == {"baseline", "ewc", "mas", "si", "rwalk", "scp"}
    assert "Done" in demo.status.value


def test_bad_settings_are_one_line_messages_in_the_page(tmp_path, data_root):
    demo = ForgettingDemo(cache_dir=tmp_path, data_root=data_root)
    before = pngs(demo)
    demo.lambdas["ewc"].value = -1
    assert demo.run() is None
    assert "lambda for ewc must be &gt;= 0" in demo.status.value and "#b00020" in demo.status.value
    demo.lambdas["ewc"].value = 100
    demo.methods.value = ()
    demo.run()
    assert "unknown method" in demo.status.value
    assert pngs(demo) == before  # the plot is left as it was


def test_missing_data_is_a_message(tmp_path):
    demo = ForgettingDemo(cache_dir=tmp_path, data_root=tmp_path / "empty")
    demo.methods.value = ("baseline",)
    demo.subset.value = 300
    demo.run()
    assert "MNIST is not under" in demo.status.value and "Traceback" not in demo.status.value


def test_run_trains_redraws_and_caches(tmp_path, data_root, monkeypatch):
    demo = ForgettingDemo(cache_dir=tmp_path, data_root=data_root, redraw_seconds=0)
    shipped = pngs(demo)
    demo.methods.value = ("baseline", "ewc")
    demo.tasks.value, demo.epochs.value, demo.subset.value = 2, 2, 300
    draws = []
    original = demo.draw
    monkeypatch.setattr(demo, "draw", lambda results: (draws.append({m: len(h.epoch_accuracy) for m, h in results.items()}),
                                                       original(results)))
    results = demo.run()
    assert set(results) == {"baseline", "ewc"} and "Done" in demo.status.value, demo.status.value
    assert draws[0] == {"baseline": 1} and {"baseline": 4, "ewc": 1} in draws  # live, epoch by epoch
    assert pngs(demo) != shipped and len(pngs(demo)) == 3
    assert len(list(tmp_path.glob("*.json"))) == 2
    assert json.loads(next(tmp_path.glob("*.json")).read_text())["config"]["tasks"] == 2

    # the same configuration again, in this demo and in a new one reading the disk cache: no training
    monkeypatch.setattr(demo_module, "run_methods", lambda *a, **k: pytest.fail("trained a cached configuration"))
    assert demo.run()["ewc"].epoch_accuracy == results["ewc"].epoch_accuracy
    again = ForgettingDemo(cache_dir=tmp_path, data_root=data_root)
    again.methods.value = ("ewc",)
    again.tasks.value, again.epochs.value, again.subset.value = 2, 2, 300
    assert again.run()["ewc"].accuracy_matrix == results["ewc"].accuracy_matrix

    # another lambda is another configuration
    monkeypatch.undo()
    demo.lambdas["ewc"].value = 0.0
    assert demo.run()["ewc"].epoch_accuracy == results["baseline"].epoch_accuracy  # lambda 0 is the baseline


def test_training_error_is_shown_and_the_button_comes_back(tmp_path, data_root, monkeypatch):
    def broken(*a, **k):
        raise RuntimeError("CUDA out of memory")
    monkeypatch.setattr(demo_module, "run_methods", broken)
    demo = ForgettingDemo(cache_dir=tmp_path, data_root=data_root)
    demo.methods.value, demo.subset.value, demo.tasks.value = ("si",), 300, 2
    demo.run()
    assert "Training failed: RuntimeError: CUDA out of memory" in demo.status.value
    assert not demo.run_button.disabled


def test_only_core_widgets_that_ipywidgets_7_has():
    import ipywidgets
    core = {"SelectMultiple", "FloatText", "Dropdown", "IntSlider", "Button", "HTML", "Output", "VBox", "HBox", "Layout"}
    used = {name for name in dir(ipywidgets) if f"w.{name}(" in open(demo_module.__file__).read()}
    assert used and used <= core, used - core
