"""The instructor's widget demo, driven without a browser: set controls, press Run, read status and plot."""
import json
from pathlib import Path

import pytest

from cl_course import demo as demo_module
from cl_course.demo import ForgettingDemo
from cl_course.config import HW14_METHODS as METHODS
from cl_course.report import precomputed


def pngs(demo):
    """The PNG bytes of the figures on screen (a hidden image shows nothing)."""
    return [bytes(image.value) for image in demo.images if image.layout.display != "none"]


def test_shipped_curves_show_and_run_looks_them_up_without_data_or_training(tmp_path, monkeypatch):
    monkeypatch.setattr(demo_module, "run_methods", lambda *a, **k: pytest.fail("trained"))
    monkeypatch.setattr(demo_module, "load_tasks", lambda *a, **k: pytest.fail("loaded data"))
    demo = ForgettingDemo(cache_dir=tmp_path, data_root=tmp_path / "nothing here")
    assert len(pngs(demo)) == 3 and all(p.startswith(b"\x89PNG") for p in pngs(demo))
    assert "Showing the shipped HW14 run" in demo.status.value
    assert demo.subset.label == "24,680 (as shipped)"  # the default controls describe the shipped run
    for protocol in ("hw14", "paper"):  # every method of both shipped runs, joint training included
        demo.protocol.value = protocol  # which sets that protocol's lambdas, those its shipped run used
        assert {m: box.value for m, box in demo.lambdas.items()} == \
            {m: r["lambda"] for m, r in precomputed(protocol)["methods"].items() if m in demo.lambdas}
        results = demo.run()
        assert set(results) == set(METHODS), demo.status.value
        assert f"Shipped runs: {', '.join(METHODS)} ({protocol} protocol" in demo.status.value
    assert results["baseline"] is demo.run()["baseline"]  # the baseline is one run under every protocol
    shipped = precomputed("paper")["methods"]["ewc"]["epoch_accuracy"]
    assert results["ewc"].epoch_accuracy == shipped


def test_the_student_edition_shows_shipped_runs_and_says_what_live_training_needs(tmp_path, monkeypatch):
    monkeypatch.setattr(demo_module, "EDITION", "student")
    monkeypatch.setattr(demo_module, "run_methods", lambda *a, **k: pytest.fail("trained"))
    demo = ForgettingDemo(cache_dir=tmp_path, data_root=tmp_path / "nothing here")
    assert "live training needs the instructor&#x27;s" in demo.status.value
    assert set(demo.run()) == set(METHODS)
    before = pngs(demo)
    demo.subset.value, demo.methods.value = 300, ("baseline",)
    assert demo.run() is None
    assert "live training needs the instructor&#x27;s edition" in demo.status.value and "#b00020" in demo.status.value
    assert pngs(demo) == before


def test_the_subset_control_names_every_choice():
    demo = ForgettingDemo()
    assert all(label for label, _ in demo.subset.options)  # no blank entry (None shows blank in ipywidgets 8)
    demo.subset.value = demo_module.ALL
    assert demo.subset.label == "all" and demo.config().subset is None


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
    def draw(results, title):
        draws.append({m: len(h.epoch_accuracy) for m, h in results.items()})
        assert title == "hw14 protocol, 2 tasks x 2 epochs, 300 images a task"
        return original(results, title)

    monkeypatch.setattr(demo, "draw", draw)
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


def test_only_core_widgets_that_render_everywhere():
    import ipywidgets
    core = {"SelectMultiple", "FloatText", "Dropdown", "IntSlider", "Button", "HTML", "Image", "VBox", "HBox", "Layout"}
    source = Path(demo_module.__file__).read_text()
    used = {name for name in dir(ipywidgets) if f"w.{name}(" in source}
    assert used and used <= core, used - core  # no Output: it does not render with widgetsnbextension 3.6.10
