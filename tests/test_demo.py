"""The instructor's widget demo, driven without a browser: set controls, press Run, read status and plot."""
import json
import re
from pathlib import Path

import pytest

from cl_course import demo as demo_module
from cl_course.demo import PERMUTED, ForgettingDemo
from cl_course.config import HW14_METHODS as METHODS
from cl_course.data import SCENARIOS
from cl_course.report import precomputed


def pngs(demo):
    """The PNG bytes of the figures on screen (a hidden image shows nothing)."""
    return [bytes(image.value) for image in demo.images if image.layout.display != "none"]


def lambdas(demo, data):
    """(the demo's lambda boxes, the shipped run's lambdas) for the shipped run's methods that have a box."""
    have = [m for m in data["methods"] if m in demo.lambdas]
    return {m: demo.lambdas[m].value for m in have}, {m: data["methods"][m]["lambda"] for m in have}


def test_shipped_curves_show_and_run_looks_them_up_without_data_or_training(tmp_path, monkeypatch):
    monkeypatch.setattr(demo_module, "run_methods", lambda *a, **k: pytest.fail("trained"))
    monkeypatch.setattr(demo_module, "load_tasks", lambda *a, **k: pytest.fail("loaded data"))
    demo = ForgettingDemo(cache_dir=tmp_path, data_root=tmp_path / "nothing here")
    assert len(pngs(demo)) == 3 and all(p.startswith(b"\x89PNG") for p in pngs(demo))
    assert "Showing the shipped HW14 run" in demo.status.value
    assert demo.subset.label == "24,680 (as shipped)"  # the default controls describe the shipped run
    for protocol in ("hw14", "paper"):  # every method of both shipped runs, joint training included
        demo.protocol.value = protocol  # which sets that protocol's lambdas, those its shipped run used
        shown, shipped = lambdas(demo, precomputed(protocol))
        assert shown == shipped
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


def test_each_split_mnist_scenario_offers_its_methods_and_shows_its_shipped_runs_without_data_or_training(
        tmp_path, monkeypatch):
    monkeypatch.setattr(demo_module, "run_methods", lambda *a, **k: pytest.fail("trained"))
    monkeypatch.setattr(demo_module, "load_tasks", lambda *a, **k: pytest.fail("loaded data"))
    demo = ForgettingDemo(cache_dir=tmp_path, data_root=tmp_path / "nothing here")
    permuted = pngs(demo)
    for scenario in SCENARIOS:
        demo.scenario.value = scenario
        data = precomputed(f"split-mnist-{scenario}")
        assert f"Showing the shipped Split MNIST {scenario}-IL runs" in demo.status.value
        assert len(pngs(demo)) == 3 and pngs(demo) != permuted
        # more than HW14's methods; iCaRL only where the library runs it
        assert {"lwf", "er", "agem", "dgr"} <= set(demo.methods.options)
        assert ("icarl" in demo.methods.options) == (scenario == "class")
        assert demo.tasks.max == 5 and demo.protocol.layout.display == "none"  # Split MNIST: 5 tasks, the papers'
        # the controls describe the shipped run, so Run looks it up
        assert list(demo.methods.value) == list(data["methods"])
        shown, shipped = lambdas(demo, data)
        assert shown == shipped
        assert demo.iterations.value == data["config"]["iterations"]
        results = demo.run()
        assert {m: h.accuracy_matrix for m, h in results.items()} == \
            {m: r["accuracy_matrix"] for m, r in data["methods"].items()}, demo.status.value
        assert f"Shipped runs: {', '.join(data['methods'])} (Split MNIST {scenario}-IL" in demo.status.value
    demo.scenario.value = PERMUTED  # back to HW14's default view
    assert list(demo.methods.options) == list(METHODS) and demo.iterations.layout.display == "none"
    assert "Showing the shipped HW14 run" in demo.status.value and pngs(demo) == permuted


def test_the_student_edition_looks_up_split_mnist_and_says_what_is_shipped(tmp_path, monkeypatch):
    monkeypatch.setattr(demo_module, "EDITION", "student")
    monkeypatch.setattr(demo_module, "run_methods", lambda *a, **k: pytest.fail("trained"))
    demo = ForgettingDemo(cache_dir=tmp_path, data_root=tmp_path / "nothing here")
    demo.scenario.value = "class"
    assert set(demo.run()) == set(precomputed("split-mnist-class")["methods"])
    demo.iterations.value = 100
    assert demo.run() is None
    assert "live training needs the instructor&#x27;s edition" in demo.status.value
    assert "Shipped: baseline, " in demo.status.value and "#b00020" in demo.status.value


def test_bad_split_mnist_settings_are_one_line_messages_in_the_page(tmp_path):
    demo = ForgettingDemo(cache_dir=tmp_path, data_root=tmp_path / "empty")
    demo.scenario.value = "class"
    demo.methods.value = ("er", "icarl")
    demo.scenario.value = "domain"  # iCaRL is class-IL only: it goes from the choices and from the selection
    assert "icarl" not in demo.methods.options + demo.methods.value
    before = pngs(demo)
    demo.lambdas["si"].value = -1
    assert demo.run() is None
    assert "lambda for si must be &gt;= 0" in demo.status.value and "#b00020" in demo.status.value
    assert pngs(demo) == before
    demo.lambdas["si"].value, demo.iterations.value = 1, 100
    demo.run()
    assert "MNIST is not under" in demo.status.value and "Traceback" not in demo.status.value


def test_split_mnist_trains_live_what_is_not_shipped(tmp_path, data_root):
    demo = ForgettingDemo(cache_dir=tmp_path, data_root=data_root)
    demo.scenario.value = "class"
    demo.methods.value, demo.tasks.value, demo.iterations.value, demo.subset.value = ("baseline", "er"), 2, 100, 300
    results = demo.run()
    assert demo.status.value.endswith("Done: baseline, er (Split MNIST class-IL, 2 tasks x 100 iterations, 300 "
                                      "training images per task).</span>"), demo.status.value
    assert [len(r) for r in results["er"].accuracy_matrix] == [2, 2]
    saved = [json.loads(path.read_text())["config"] for path in tmp_path.glob("*.json")]
    assert sorted(c["methods"][0] for c in saved) == ["baseline", "er"]
    assert {(c["benchmark"], c["scenario"], c["iterations"]) for c in saved} == {("split-mnist", "class", 100)}


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


def test_split_mnist_forgetting_curves_share_0_to_100_in_every_scenario_permuted_its_own_range(tmp_path, monkeypatch):
    ranges = []
    real = demo_module.plot_forgetting_curves

    def recorded(results, **kwargs):
        fig = real(results, **kwargs)
        ranges.append(fig.axes[0].get_ylim())
        return fig
    monkeypatch.setattr(demo_module, "plot_forgetting_curves", recorded)
    monkeypatch.setattr(demo_module, "png", lambda fig: b"")  # rendering is not what is tested: fast
    demo = ForgettingDemo(cache_dir=tmp_path, data_root=tmp_path / "nothing here")
    for scenario in SCENARIOS:  # task-IL's runs alone would span 90-100
        demo.scenario.value = scenario
    assert ranges[1:] == [(0, 100)] * 3
    assert ranges[0][0] > 0  # Permuted MNIST: from a multiple of 5 below its lowest accuracy


DEMO_NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "demo_forgetting_curves.ipynb"


def markdown(starts):
    """The demo notebook's markdown cell that starts with `starts`, its lines joined."""
    cells = json.loads(DEMO_NOTEBOOK.read_text())["cells"]
    (text,) = [" ".join("".join(c["source"]).split()) for c in cells
               if c["cell_type"] == "markdown" and "".join(c["source"]).startswith(starts)]
    return text


def shipped_matrices(name):
    return {m: r["accuracy_matrix"] for m, r in precomputed(name)["methods"].items()}


def final(R):  # the average over every task after the last: computed here, not by cl_course.metrics
    return sum(R[-1]) / len(R[-1])


def forgetting(R):
    """Minus the backward transfer: the mean drop of the old tasks since each was learnt."""
    return sum(R[j][j] - R[-1][j] for j in range(len(R) - 1)) / (len(R) - 1)


def test_the_suggested_path_states_what_the_shipped_runs_show():
    text = markdown("**Suggested path")
    hw14, paper = shipped_matrices("hw14"), shipped_matrices("paper")
    task, domain, cls = (shipped_matrices(f"split-mnist-{s}") for s in SCENARIOS)
    baseline = hw14["baseline"]
    assert all(baseline[i + 1][0] < baseline[i][0] for i in range(4))  # task 1 drops at every boundary
    assert f"ends at {baseline[-1][0]:.0f}%" in text and f"is {-forgetting(baseline):.1f} points" in text
    assert {round(forgetting(hw14[m])) for m in ("mas", "rwalk", "scp")} == {2}
    assert "MAS, RWalk and SCP lose about 2 points" in text
    ewc_si = sorted(forgetting(hw14[m]) for m in ("ewc", "si"))
    assert f"EWC and SI {ewc_si[0]:.0f} to {ewc_si[1]:.0f}" in text
    regularisers = sorted(round(forgetting(paper[m])) for m in ("ewc", "mas", "si", "rwalk", "scp"))
    assert f"every regulariser loses {regularisers[0]} to {regularisers[-1]} points" in text
    assert all(R[i][i] - R[-1][i] < 5 for m, R in paper.items() if m != "baseline" for i in range(5))  # close

    plain = sorted(final(cls[m]) for m in ("baseline", "ewc", "si"))
    assert all(abs(v - 20) < 1 for v in plain) and f"({plain[0]:.1f}-{plain[-1]:.1f}%)" in text
    assert all(cls[m][-1][j] < 2 for m in ("baseline", "ewc", "si") for j in range(4))  # near 0 but task 5
    lwf = cls["lwf"]
    assert abs(final(lwf) - 20) < 2 and f"near 20% too ({final(lwf):.1f}%)" in text
    assert f"keeps task 1 at {lwf[-1][0]:.1f}%" in text
    later = [lwf[i][i] for i in range(1, 5)]
    assert f"({min(later):.0f}-{max(later):.0f}% on the diagonal)" in text
    assert f"ER {final(cls['er']):.1f}%, iCaRL {final(cls['icarl']):.1f}%, A-GEM {final(cls['agem']):.1f}%" in text

    assert min(final(R) for R in task.values()) >= 98.5 and "every method ends at 98.5% or more" in text
    assert f"the baseline ends at {final(domain['baseline']):.1f}%" in text
    middle = sorted(final(domain[m]) for m in ("ewc", "si", "lwf"))
    assert f"EWC, SI and LwF at {middle[0]:.0f}-{middle[-1]:.0f}%" in text
    assert f"ER at {final(domain['er']):.1f}%" in text
    for m in ("si", "lwf"):  # they keep task 1 and learn the later tasks less well than the baseline does
        assert abs(domain[m][-1][0] - 99) < 1
        assert sum(domain[m][i][i] for i in range(1, 5)) < sum(domain["baseline"][i][i] for i in range(1, 5))
    live = markdown("**Training live")
    assert f"the baseline's ({final(domain['baseline']):.1f}%)" in live


def italics(text):
    return set(re.findall(r"(?<!\*)\*([^*]+)\*(?!\*)", text))


def test_the_notebook_names_only_controls_and_choices_the_demo_has(tmp_path):
    demo = ForgettingDemo(cache_dir=tmp_path)
    controls = [demo.scenario, demo.methods, demo.protocol, demo.tasks, demo.epochs, demo.iterations, demo.subset]
    known = {c.description for c in controls} | {label for label, _ in demo_module.SCENARIO_CHOICES}
    known |= set(demo.protocol.options)
    known |= {m for data in demo.runs.values() for m in demo_module.offered(demo_module.config_of(data))}
    named = italics(markdown("**Suggested path")) | italics(markdown("**Training live"))
    assert named and named <= known, named - known


def test_every_step_of_the_suggested_path_shows_shipped_runs_in_the_student_edition(tmp_path, monkeypatch):
    monkeypatch.setattr(demo_module, "EDITION", "student")
    monkeypatch.setattr(demo_module, "run_methods", lambda *a, **k: pytest.fail("trained"))
    monkeypatch.setattr(demo_module, "load_tasks", lambda *a, **k: pytest.fail("loaded data"))
    monkeypatch.setattr(ForgettingDemo, "draw", lambda *a: None)  # what is shown is tested above: fast
    demo = ForgettingDemo(cache_dir=tmp_path, data_root=tmp_path / "nothing here")
    for method in ("mas", "ewc"):  # step 1: the baseline beside one other method
        demo.methods.value = ("baseline", method)
        assert set(demo.run()) == {"baseline", method}, demo.status.value
    demo.protocol.value = "paper"  # step 2
    assert set(demo.run()) == {"baseline", "ewc"}, demo.status.value
    for scenario in ("class", "task", "domain"):  # steps 3 and 4
        demo.scenario.value = scenario
        assert set(demo.run()) == set(precomputed(f"split-mnist-{scenario}")["methods"]), demo.status.value
    assert "#b00020" not in demo.status.value  # never the refusal
