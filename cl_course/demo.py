"""The instructor's forgetting-curve demo: controls, a Run button, curves and the accuracy matrix
redrawn while training, finished configurations cached, and shipped runs on screen before any training:
Permuted MNIST (HW14's benchmark, both protocols, every HW14 method) and Split MNIST in each of the three
scenarios (its methods at fewer iterations per task than van de Ven & Tolias's 2,000, see
benchmarks/demo_runs.py).

Core ipywidgets only, and no Output widget: figures are Image widgets holding PNG bytes and the
status is HTML, so it renders in JupyterLab 4 (ipywidgets 8), in the classic notebook 6.5 with
ipywidgets 7.7.1 and widgetsnbextension 3.6.10 (where Output does not render), and in Colab.

Everything is reachable without a browser: set the controls' values, call run(), read `status`
and the PNG bytes in `images`.
"""
import dataclasses
import hashlib
import html
import io
import json
import os
import time
from dataclasses import replace
from pathlib import Path

import ipywidgets as w

from . import EDITION, registry
from .config import HW14_METHODS, PROTOCOLS, RunConfig
from .data import BENCHMARKS, SCENARIOS, DataError
from .plots import plot_accuracy_matrix, plot_average_accuracy, plot_forgetting_curves
from .report import PRECOMPUTED, SPLIT_PRECOMPUTED, histories, precomputed, results_dict
from .train import load_tasks, run_methods, select_device

ALL = 0  # the subset control's value for "all the training images" (None would show a blank choice)
SUBSETS = [("10,000", 10000), ("3,000", 3000), ("1,000", 1000), ("300", 300)]
PERMUTED = "permuted"  # the scenario control's value for Permuted MNIST; Split MNIST's are SCENARIOS
SCENARIO_CHOICES = [("Permuted MNIST (HW14)", PERMUTED)] + [(f"Split MNIST, {s}-IL", s) for s in SCENARIOS]
ITERATIONS = [("100", 100), ("300", 300), ("1,000", 1000), ("2,000 (the paper's)", 2000)]  # per task, Split MNIST
# The methods with a lambda box, holding its default: the regularisers (one without a default is never offered,
# since RunConfig.check refuses it without a lambda)
WITH_LAMBDA = tuple(m for m in registry.names("regularisation") if registry.spec(m).lam is not None)
# What decides a run besides the method, its lambda and the number of training images
KEY_FIELDS = [f.name for f in dataclasses.fields(RunConfig)
              if f.name not in ("methods", "lambdas", "subset", "device", "data_root")]
PENALTY_FIELDS = ("protocol", "fisher_labels", "scp_slices", "importance_batch_size")  # no effect on the baseline


def default_cache_dir():
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cl-course" / "demo"


def config_of(data):
    """The RunConfig of a results dict (a shipped run or a cache file); fields it lacks take their defaults."""
    names = {f.name for f in dataclasses.fields(RunConfig)}
    config = {k: v for k, v in data["config"].items() if k in names}
    return RunConfig(**config | {"methods": tuple(config["methods"])})


def run_key(config, method, n_train):
    """What decides one method's run: the settings that change training, its lambda and the data size.
    The baseline and joint training have no penalty, so each is the same run under every protocol."""
    penalty_free = registry.spec(method).family in ("baseline", "upper bound")
    fields = {k: getattr(config, k) for k in KEY_FIELDS if not (penalty_free and k in PENALTY_FIELDS)}
    return json.dumps(fields | {"method": method, "lambda": config.lam(method), "training_samples_per_task": n_train},
                      sort_keys=True)


def png(fig):
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    return buffer.getvalue()


def runs_here(config):
    """Whether the library runs `config` (it refuses, e.g., iCaRL outside class-IL)."""
    try:
        config.check()
    except ValueError:
        return False
    return True


def offered(base):
    """The methods the demo offers for `base`'s benchmark and scenario: HW14's on Permuted MNIST, as the
    homework; on Split MNIST every method the library runs in that scenario."""
    if base.benchmark == "permuted-mnist":
        return list(HW14_METHODS)
    return [m for m in registry.names() if runs_here(replace(base, methods=(m,)))]


def sizes_text(sizes):
    """'300', or '4,621-5,246' when the tasks differ in size (Split MNIST's digits)."""
    return f"{min(sizes):,}" if min(sizes) == max(sizes) else f"{min(sizes):,}-{max(sizes):,}"


def schedule(config):
    """'5 tasks x 10 epochs', '5 tasks x 300 iterations' or '5 tasks x 2 epochs of 300 iterations'."""
    if config.iterations and config.epochs == 1:
        return f"{config.tasks} tasks x {config.iterations:,} iterations"
    steps = f" of {config.iterations:,} iterations" if config.iterations else ""
    return f"{config.tasks} tasks x {config.epochs} epoch" + "s" * (config.epochs != 1) + steps


def where(config):
    """What the run is on, as the page names it: the protocol on Permuted MNIST, the scenario on Split MNIST."""
    if config.benchmark == "permuted-mnist":
        return f"{config.protocol} protocol"
    return f"Split MNIST {config.the_scenario()}-IL"


def title(config, sizes, shipped=False):
    """The figures' title, short enough for one line above the figures (Split MNIST's task sizes are in the
    status line)."""
    if config.benchmark == "permuted-mnist":
        return f"{where(config)}, {'shipped full run' if shipped else schedule(config)}, {sizes} images a task"
    return f"{where(config)}, {'shipped run, ' if shipped else ''}{schedule(config)}"


class ForgettingDemo:
    """demo = ForgettingDemo(); demo.widget is what the notebook displays."""

    def __init__(self, cache_dir=None, data_root=None, redraw_seconds=1.0):
        self.cache_dir = Path(cache_dir or default_cache_dir())
        self.data_root = data_root
        self.redraw_seconds = redraw_seconds  # live redraws at most this often (drawing costs ~0.3 s)
        self.memory = {}                      # run_key -> History, for this session
        self.loaded = {}                      # data settings -> tasks, so a rerun skips loading
        self.shipped = {}                     # run_key -> History of the shipped runs
        self.runs = {name: precomputed(name) for name in PRECOMPUTED + SPLIT_PRECOMPUTED}  # by shipped_name()
        for data in self.runs.values():
            for method, history in histories(data).items():
                self.shipped[run_key(config_of(data), method, data["environment"]["training_samples_per_task"])] \
                    = history

        d = RunConfig()
        self.scenario = w.Dropdown(options=SCENARIO_CHOICES, value=PERMUTED, description="scenario")
        self.methods = w.SelectMultiple(options=list(HW14_METHODS), value=list(HW14_METHODS), rows=7,
                                        description="methods")
        self.lambdas = {m: w.FloatText(value=registry.default_lambda(m), description=f"λ {m}",
                                       layout=w.Layout(width="180px")) for m in WITH_LAMBDA}
        self.protocol = w.Dropdown(options=list(PROTOCOLS), value=d.protocol, description="protocol")
        # each protocol has its own lambdas: switching shows the ones its shipped run used
        self.protocol.observe(lambda change: self.use_lambdas(change["new"]), names="value")
        self.tasks = w.IntSlider(value=d.tasks, min=2, max=10, description="tasks")
        self.epochs = w.IntSlider(value=d.epochs, min=1, max=10, description="epochs")
        self.iterations = w.Dropdown(options=ITERATIONS, description="iterations")  # per task; Split MNIST only
        self.subset = w.Dropdown(options=[("all", ALL)], value=ALL, description="train subset")
        self.run_button = w.Button(description="Run", button_style="primary", tooltip="train what is not cached")
        self.run_button.on_click(lambda _: self.run())
        self.status = w.HTML()
        self.images = [w.Image(format="png", layout=w.Layout(max_width="100%")) for _ in range(3)]
        self.widget = w.VBox([
            w.HBox([self.methods, w.VBox([self.scenario, self.protocol, self.tasks, self.epochs, self.iterations,
                                          self.subset])]),
            w.HBox(list(self.lambdas.values()), layout=w.Layout(flex_flow="row wrap")),  # Split MNIST's six
            w.HBox([self.run_button, self.status]),
            *self.images,
        ])
        # a scenario shows its shipped runs at once, with the controls set to what they trained
        self.scenario.observe(lambda change: self.show(change["new"]), names="value")
        self.show(PERMUTED)

    def shipped_name(self):
        """The shipped run the controls' benchmark, scenario and protocol belong to (a key of `runs`)."""
        if self.scenario.value == PERMUTED:
            return self.protocol.value
        return f"split-mnist-{self.scenario.value}"

    def shipped_sizes(self, name):
        """The training images per task of the shipped run `name`, as the page says it."""
        environment = self.runs[name]["environment"]
        return sizes_text(environment.get("training_samples_each_task") or [environment["training_samples_per_task"]])

    def as_shipped(self, name):
        """The subset control's value for the shipped run's training images: their number on Permuted MNIST
        (the offline copy's 24,680: from a bigger data root the same number is drawn), all of them on Split
        MNIST, whose tasks differ in size."""
        if config_of(self.runs[name]).benchmark == "permuted-mnist":
            return self.runs[name]["environment"]["training_samples_per_task"]
        return ALL

    def show(self, scenario):
        """`scenario`'s default view: the controls as its shipped run trained (Permuted MNIST: HW14's
        protocol), the methods the library runs there, and the shipped curves."""
        split = scenario != PERMUTED
        self.protocol.value = "hw14"
        self.protocol.layout.display = "none" if split else None  # Split MNIST runs the papers' protocol
        self.iterations.layout.display = None if split else "none"
        name = self.shipped_name()
        data, base = self.runs[name], config_of(self.runs[name])
        methods = offered(base)
        self.methods.options, self.methods.rows = methods, len(methods)
        self.methods.value = list(data["methods"])
        for m, box in self.lambdas.items():
            box.layout.display = None if m in methods else "none"
        self.use_lambdas(name)
        self.tasks.max = BENCHMARKS[base.benchmark].max_tasks or 10
        self.tasks.value, self.epochs.value = base.tasks, base.epochs
        if split:
            self.iterations.options = [(f"{base.iterations:,} (as shipped)", base.iterations)] + \
                [(label, n) for label, n in ITERATIONS if n != base.iterations]
            self.iterations.value = base.iterations
        n = self.runs[name]["environment"]["training_samples_per_task"]
        shipped = (f"all (as shipped: {self.shipped_sizes(name)})", ALL) if split else \
            (f"{n:,} (as shipped)", n)
        self.subset.options = [shipped] + [(label, k) for label, k in [("all", ALL)] + SUBSETS
                                           if k != shipped[1] and k < n]
        self.subset.value = self.as_shipped(name)
        self.draw(histories(data), title(base, self.shipped_sizes(name), shipped=True))
        student = "look them up (this is the student edition of cl_course: live training needs the instructor's)."
        if not split:
            return self.say(f"Showing the shipped HW14 run: {schedule(base)}, {n:,} training images per task, "
                            "HW14's lambdas. Switch the protocol (which sets its lambdas) to see the paper one, or "
                            "the scenario to see Split MNIST; change the settings and press Run to "
                            + ("train." if EDITION == "instructor" else student))
        papers = " (the paper's: 2,000)" if base.iterations != 2000 else ""
        live = (f"train: a method not shipped trains {base.tasks * base.iterations:,} iterations, seconds to a "
                "minute on a laptop CPU.")
        self.say(f"Showing the shipped Split MNIST {scenario}-IL runs: {', '.join(data['methods'])}. van de Ven & "
                 f"Tolias's protocol (MLP 2x400, Adam lr 0.001, batches of 128) with {base.iterations:,} iterations "
                 f"per task{papers}, all the training images of each task's two digits "
                 f"({self.shipped_sizes(name)}), EWC's and SI's lambdas chosen on held-out images. Add methods or "
                 "change the settings and press Run to " + (live if EDITION == "instructor" else student))

    def use_lambdas(self, name):
        """The lambdas of the shipped run `name` (a method it did not run: the library's default)."""
        data = self.runs[name]
        shipped = config_of(data).lambdas | {m: r["lambda"] for m, r in data["methods"].items()}
        for m, box in self.lambdas.items():
            box.value = shipped.get(m, registry.default_lambda(m))

    def say(self, text, error=False):
        colour = "#b00020" if error else "inherit"
        self.status.value = f'<span style="color:{colour}">{html.escape(text)}</span>'

    def config(self):
        """The RunConfig the controls describe; ValueError with a one-line message if it is not valid."""
        lambdas = {m: float(box.value) for m, box in self.lambdas.items()}
        # the settings without a control (the protocol's Fisher labels, slices and importance batch, Split
        # MNIST's learning rate...) are those of the shipped run of the same benchmark, scenario and protocol
        base = config_of(self.runs[self.shipped_name()])
        return replace(base, methods=tuple(self.methods.value), tasks=self.tasks.value, epochs=self.epochs.value,
                       iterations=self.iterations.value if self.scenario.value != PERMUTED else None,
                       subset=self.subset.value or None, lambdas=lambdas, device=RunConfig().device,
                       data_root=self.data_root).check()

    def load(self, config):
        settings = (config.benchmark, config.the_scenario(), config.tasks, config.subset, config.test_subset,
                    config.seed)
        if settings not in self.loaded:
            self.loaded[settings] = load_tasks(config, select_device(config.device))
        return self.loaded[settings]

    def cache_path(self, key):
        return self.cache_dir / f"{hashlib.sha256(key.encode()).hexdigest()[:20]}.json"

    def cached(self, key):
        """The History of a finished run of `key` (shipped, this session's, else the disk cache's), or None."""
        if key in self.shipped:
            return self.shipped[key]
        if key not in self.memory:
            path = self.cache_path(key)
            if path.exists():
                self.memory[key] = next(iter(histories(json.loads(path.read_text())).values()))
        return self.memory.get(key)

    def store(self, key, config, method, history, device, n_train):
        self.memory[key] = history
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        data = results_dict(replace(config, methods=(method,)), {method: history}, device, n_train)
        self.cache_path(key).write_text(json.dumps(data | {"key": key}, default=str))

    def draw(self, results, title):
        """Redraw the average-accuracy curve, the forgetting curves and, once a task has finished, R. Split
        MNIST's forgetting curves span 0-100% in every scenario, so that switching scenarios compares them."""
        finished = {m: h for m, h in results.items() if h.accuracy_matrix}
        split = self.scenario.value != PERMUTED
        figures = [plot_average_accuracy(results, title=title),
                   plot_forgetting_curves(results, title=title, full_range=split)]
        figures.append(plot_accuracy_matrix(finished, title=title) if finished else None)
        for image, fig in zip(self.images, figures, strict=False):
            image.layout.display = None if fig else "none"
            if fig:
                image.value = png(fig)

    def run(self):
        """The Run button: train what is not cached, redrawing as epochs finish; errors go to `status`."""
        try:
            config = self.config()
        except ValueError as e:
            return self.say(str(e), error=True)
        name = self.shipped_name()
        if self.subset.value == self.as_shipped(name):  # the shipped runs' size needs no data to look them up
            n_shipped, sizes = self.runs[name]["environment"]["training_samples_per_task"], self.shipped_sizes(name)
            results = {m: self.cached(run_key(config, m, n_shipped)) for m in config.methods}
            if all(results.values()):
                self.draw(results, title(config, sizes, shipped=True))
                self.say(f"Shipped runs: {', '.join(config.methods)} ({where(config)}, {schedule(config)}, "
                         f"{sizes} training images per task).")
                return results
        if EDITION != "instructor":
            return self.say("No shipped run has these settings, and live training needs the instructor's edition of "
                            "cl_course (this is the student edition). Shipped: " + self.shipped_runs(name), error=True)
        try:
            self.say("Loading data...")
            tasks = self.load(config)
        except (ValueError, DataError) as e:
            return self.say(str(e), error=True)
        n_train, device = len(tasks[0].x_train), tasks[0].x_train.device
        sizes = sizes_text([len(t.x_train) for t in tasks])
        heading = title(config, sizes)
        results, last_draw = {}, 0.0
        self.run_button.disabled = True
        try:
            for method in config.methods:
                key = run_key(config, method, n_train)
                if self.cached(key) is not None:  # the second call is a dict lookup
                    results[method] = self.cached(key)
                    continue
                self.say(f"Training {method} ({len(results) + 1} of {len(config.methods)})...")

                def live(m, history):
                    nonlocal last_draw
                    if time.monotonic() - last_draw >= self.redraw_seconds:
                        self.draw(results | {m: history}, heading)
                        last_draw = time.monotonic()
                results[method] = run_methods(replace(config, methods=(method,)), tasks, on_epoch=live,
                                              progress=False)[method]
                self.store(key, config, method, results[method], device, n_train)
            self.draw(results, heading)
            split = "" if config.benchmark == "permuted-mnist" else f"{where(config)}, "
            self.say(f"Done: {', '.join(config.methods)} ({split}{schedule(config)}, {sizes} training images "
                     "per task).")
        except Exception as e:  # shown in the page as one line; the demo stays usable
            self.say(f"Training failed: {type(e).__name__}: {e}", error=True)
        finally:
            self.run_button.disabled = False
        return results

    def shipped_runs(self, name):
        """What is shipped for the view of `name`, for the student edition's message."""
        base = config_of(self.runs[name])
        if base.benchmark == "permuted-mnist":
            return (f"{schedule(base)}, {self.as_shipped(name):,} images, both protocols with their own lambdas "
                    "(switching the protocol sets them).")
        return (f"{', '.join(self.runs[name]['methods'])} at {schedule(base)}, all {self.shipped_sizes(name)} "
                "images a task, with their lambdas (switching the scenario sets them).")
