"""The instructor's forgetting-curve demo: controls, a Run button, curves and the accuracy matrix
redrawn while training, finished configurations cached, and the shipped full runs (both protocols,
every method) on screen before any training.

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

from . import EDITION
from .config import HW14_LAMBDAS, HW14_METHODS, PROTOCOLS, REGULARISED, RunConfig
from .data import DataError
from .plots import plot_accuracy_matrix, plot_average_accuracy, plot_forgetting_curves
from .report import PRECOMPUTED, histories, precomputed, results_dict
from .train import load_tasks, run_methods, select_device

ALL = 0  # the subset control's value for "all the training images" (None would show a blank choice)
SUBSETS = [("10,000", 10000), ("3,000", 3000), ("1,000", 1000), ("300", 300)]
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
    penalty_free = method in ("baseline", "joint")
    fields = {k: getattr(config, k) for k in KEY_FIELDS if not (penalty_free and k in PENALTY_FIELDS)}
    return json.dumps(fields | {"method": method, "lambda": config.lam(method), "training_samples_per_task": n_train},
                      sort_keys=True)


def png(fig):
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    return buffer.getvalue()


class ForgettingDemo:
    """demo = ForgettingDemo(); demo.widget is what the notebook displays."""

    def __init__(self, cache_dir=None, data_root=None, redraw_seconds=1.0):
        self.cache_dir = Path(cache_dir or default_cache_dir())
        self.data_root = data_root
        self.redraw_seconds = redraw_seconds  # live redraws at most this often (drawing costs ~0.3 s)
        self.memory = {}                      # run_key -> History, for this session
        self.loaded = {}                      # data settings -> tasks, so a rerun skips loading
        self.shipped = {}                     # run_key -> History of the shipped full runs
        self.shipped_n = precomputed("hw14")["environment"]["training_samples_per_task"]
        self.shipped_lambdas = {}             # protocol -> {method: lambda} of its shipped run
        self.shipped_settings = {}            # protocol -> the penalty settings its shipped run used
        for protocol in PRECOMPUTED:
            data = precomputed(protocol)
            self.shipped_lambdas[protocol] = {m: r["lambda"] for m, r in data["methods"].items()}
            self.shipped_settings[protocol] = {k: getattr(config_of(data), k) for k in PENALTY_FIELDS
                                               if k != "protocol"}
            for method, history in histories(data).items():
                n_train = data["environment"]["training_samples_per_task"]
                self.shipped[run_key(config_of(data), method, n_train)] = history

        d = RunConfig()
        self.methods = w.SelectMultiple(options=list(HW14_METHODS), value=list(HW14_METHODS), rows=7,
                                        description="methods")
        self.lambdas = {m: w.FloatText(value=HW14_LAMBDAS[m], description=f"λ {m}", layout=w.Layout(width="180px"))
                        for m in REGULARISED}
        self.protocol = w.Dropdown(options=list(PROTOCOLS), value=d.protocol, description="protocol")
        # each protocol has its own lambdas: switching shows the ones its shipped run used
        self.protocol.observe(lambda change: self.use_lambdas(change["new"]), names="value")
        self.tasks = w.IntSlider(value=d.tasks, min=2, max=10, description="tasks")
        self.epochs = w.IntSlider(value=d.epochs, min=1, max=10, description="epochs")
        # the default is the shipped runs' size, so that Run with the default settings shows them at once,
        # whatever the size of the data here (60,000 images with internet, 24,680 offline)
        self.subset = w.Dropdown(options=[(f"{self.shipped_n:,} (as shipped)", self.shipped_n), ("all", ALL)] + SUBSETS,
                                 value=self.shipped_n, description="train subset")
        self.run_button = w.Button(description="Run", button_style="primary", tooltip="train what is not cached")
        self.run_button.on_click(lambda _: self.run())
        self.status = w.HTML()
        self.images = [w.Image(format="png", layout=w.Layout(max_width="100%")) for _ in range(3)]
        self.widget = w.VBox([
            w.HBox([self.methods, w.VBox([self.protocol, self.tasks, self.epochs, self.subset])]),
            w.HBox(list(self.lambdas.values())),
            w.HBox([self.run_button, self.status]),
            *self.images,
        ])
        self.draw(histories(precomputed("hw14")), f"hw14 protocol, shipped full run, {self.shipped_n:,} images a task")
        self.say(f"Showing the shipped HW14 run: 5 tasks x 10 epochs, {self.shipped_n:,} training images per task, "
                 "HW14's lambdas. Switch the protocol (which sets its lambdas) to see the paper one; change the "
                 "settings and press Run to "
                 + ("train." if EDITION == "instructor" else "look them up (this is the student edition of cl_course: "
                    "live training needs the instructor's)."))

    def use_lambdas(self, protocol):
        for m, box in self.lambdas.items():
            box.value = self.shipped_lambdas[protocol].get(m, HW14_LAMBDAS[m])

    def say(self, text, error=False):
        colour = "#b00020" if error else "inherit"
        self.status.value = f'<span style="color:{colour}">{html.escape(text)}</span>'

    def config(self):
        """The RunConfig the controls describe; ValueError with a one-line message if it is not valid."""
        lambdas = {m: float(box.value) for m, box in self.lambdas.items()}
        # the protocol's Fisher labels, slices and importance batch are those of its shipped run (the paper
        # one: the notebook's empirical Fisher)
        return RunConfig(methods=tuple(self.methods.value), protocol=self.protocol.value, tasks=self.tasks.value,
                         epochs=self.epochs.value, subset=self.subset.value or None, lambdas=lambdas,
                         data_root=self.data_root, **self.shipped_settings[self.protocol.value]).check()

    def load(self, config):
        settings = (config.tasks, config.subset, config.test_subset, config.seed)
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
        """Redraw the average-accuracy curve, the forgetting curves and, once a task has finished, R."""
        finished = {m: h for m, h in results.items() if h.accuracy_matrix}
        figures = [plot_average_accuracy(results, title=title), plot_forgetting_curves(results, title=title)]
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
        if config.subset == self.shipped_n:  # the shipped runs' size needs no data to look them up
            results = {m: self.cached(run_key(config, m, self.shipped_n)) for m in config.methods}
            if all(results.values()):
                self.draw(results, f"{config.protocol} protocol, shipped full run, {self.shipped_n:,} images a task")
                self.say(f"Shipped runs: {', '.join(config.methods)} ({config.protocol} protocol, {config.tasks} "
                         f"tasks x {config.epochs} epochs, {self.shipped_n:,} training images per task).")
                return results
        if EDITION != "instructor":
            return self.say("No shipped run has these settings, and live training needs the instructor's edition of "
                            "cl_course (this is the student edition). Shipped: 5 tasks x 10 epochs, "
                            f"{self.shipped_n:,} images, both protocols with their own lambdas (switching the "
                            "protocol sets them).", error=True)
        try:
            self.say("Loading data...")
            tasks = self.load(config)
        except (ValueError, DataError) as e:
            return self.say(str(e), error=True)
        n_train, device = len(tasks[0].x_train), tasks[0].x_train.device
        title = f"{config.protocol} protocol, {config.tasks} tasks x {config.epochs} epochs, {n_train:,} images a task"
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
                        self.draw(results | {m: history}, title)
                        last_draw = time.monotonic()
                results[method] = run_methods(replace(config, methods=(method,)), tasks, on_epoch=live,
                                              progress=False)[method]
                self.store(key, config, method, results[method], device, n_train)
            self.draw(results, title)
            epochs = f"{config.epochs} epoch" + "s" * (config.epochs != 1)
            self.say(f"Done: {', '.join(config.methods)} ({config.tasks} tasks x {epochs}, "
                     f"{n_train:,} training images per task).")
        except Exception as e:  # shown in the page as one line; the demo stays usable
            self.say(f"Training failed: {type(e).__name__}: {e}", error=True)
        finally:
            self.run_button.disabled = False
        return results
