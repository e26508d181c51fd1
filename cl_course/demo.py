"""The instructor's forgetting-curve demo: controls, a Run button, curves and the accuracy matrix
redrawn while training, finished configurations cached, and the shipped HW14 run on screen before
any training. Core ipywidgets only, so it runs with ipywidgets 7 (Colab) and 8 (JupyterLab 4).

Everything is reachable without a browser: set the controls' values, call run(), read `status`
and the PNGs in `plot.outputs`.
"""
import hashlib
import html
import io
import json
import os
import time
from dataclasses import replace
from pathlib import Path

import ipywidgets as w
from IPython.display import Image

from .config import HW14_LAMBDAS, METHODS, PROTOCOLS, RunConfig
from .data import DataError
from .plots import plot_accuracy_matrix, plot_average_accuracy, plot_forgetting_curves
from .report import histories, precomputed, results_dict
from .train import load_tasks, run_methods, select_device

SUBSETS = [("all", None), ("10,000", 10000), ("3,000", 3000), ("1,000", 1000), ("300", 300)]
KEY_FIELDS = ("protocol", "tasks", "epochs", "batch_size", "lr", "seed", "permutation_seed", "fisher_labels",
              "scp_slices", "multi_head", "test_subset", "eval_batch_size")


def default_cache_dir():
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cl-course" / "demo"


def run_key(config, method, n_train):
    """What decides one method's run: the settings that change training, its lambda and the data size."""
    fields = {k: config.get(k) if isinstance(config, dict) else getattr(config, k) for k in KEY_FIELDS}
    lam = config["lambdas"].get(method, HW14_LAMBDAS[method]) if isinstance(config, dict) else config.lam(method)
    return json.dumps(fields | {"method": method, "lambda": lam, "training_samples_per_task": n_train}, sort_keys=True)


def png(fig):
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    return Image(buffer.getvalue())


class ForgettingDemo:
    """demo = ForgettingDemo(); demo.widget is what the notebook displays."""

    def __init__(self, cache_dir=None, data_root=None, redraw_seconds=1.0):
        self.cache_dir = Path(cache_dir or default_cache_dir())
        self.data_root = data_root
        self.redraw_seconds = redraw_seconds  # live redraws at most this often (drawing costs ~0.3 s)
        self.memory = {}                      # run_key -> History, for this session
        self.loaded = {}                      # data settings -> tasks, so a rerun skips loading
        shipped = precomputed("hw14")
        n_train = shipped["environment"]["training_samples_per_task"]
        for method, history in histories(shipped).items():
            self.memory[run_key(shipped["config"], method, n_train)] = history

        d = RunConfig()
        self.methods = w.SelectMultiple(options=list(METHODS), value=list(METHODS), rows=6, description="methods")
        self.lambdas = {m: w.FloatText(value=HW14_LAMBDAS[m], description=f"λ {m}", layout=w.Layout(width="180px"))
                        for m in METHODS if m != "baseline"}
        self.protocol = w.Dropdown(options=list(PROTOCOLS), value=d.protocol, description="protocol")
        self.tasks = w.IntSlider(value=d.tasks, min=2, max=10, description="tasks")
        self.epochs = w.IntSlider(value=d.epochs, min=1, max=10, description="epochs")
        self.subset = w.Dropdown(options=SUBSETS, value=None, description="train subset")
        self.run_button = w.Button(description="Run", button_style="primary", tooltip="train what is not cached")
        self.run_button.on_click(lambda _: self.run())
        self.status = w.HTML()
        self.plot = w.Output()
        self.widget = w.VBox([
            w.HBox([self.methods, w.VBox([self.protocol, self.tasks, self.epochs, self.subset])]),
            w.HBox(list(self.lambdas.values())),
            w.HBox([self.run_button, self.status]),
            self.plot,
        ])
        self.draw(histories(shipped))
        self.say(f"Showing the shipped HW14 run: 5 tasks x 10 epochs, {n_train:,} training images per task, "
                 f"trained on {shipped['environment']['device']}. Change the settings and press Run.")

    def say(self, text, error=False):
        colour = "#b00020" if error else "inherit"
        self.status.value = f'<span style="color:{colour}">{html.escape(text)}</span>'

    def config(self):
        """The RunConfig the controls describe; ValueError with a one-line message if it is not valid."""
        lambdas = {m: float(box.value) for m, box in self.lambdas.items()}
        return RunConfig(methods=tuple(self.methods.value), protocol=self.protocol.value, tasks=self.tasks.value,
                         epochs=self.epochs.value, subset=self.subset.value, lambdas=lambdas,
                         data_root=self.data_root).check()

    def load(self, config):
        settings = (config.tasks, config.subset, config.test_subset, config.seed)
        if settings not in self.loaded:
            self.loaded[settings] = load_tasks(config, select_device(config.device))
        return self.loaded[settings]

    def cache_path(self, key):
        return self.cache_dir / f"{hashlib.sha256(key.encode()).hexdigest()[:20]}.json"

    def cached(self, key):
        """The History of a finished run of `key` (this session's, else the disk cache's), or None."""
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

    def draw(self, results):
        """Replace the plot with the average-accuracy curve, the forgetting curves and R."""
        figures = [plot_average_accuracy(results), plot_forgetting_curves(results)]
        finished = {m: h for m, h in results.items() if h.accuracy_matrix}
        if finished:
            figures.append(plot_accuracy_matrix(finished))
        self.plot.outputs = ()
        for fig in figures:
            self.plot.append_display_data(png(fig))

    def run(self):
        """The Run button: train what is not cached, redrawing as epochs finish; errors go to `status`."""
        try:
            config = self.config()
            self.say("Loading data...")
            tasks = self.load(config)
        except (ValueError, DataError) as e:
            return self.say(str(e), error=True)
        n_train, device = len(tasks[0].x_train), tasks[0].x_train.device
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
                        self.draw(results | {m: history})
                        last_draw = time.monotonic()
                results[method] = run_methods(replace(config, methods=(method,)), tasks, on_epoch=live,
                                              progress=False)[method]
                self.store(key, config, method, results[method], device, n_train)
            self.draw(results)
            epochs = f"{config.epochs} epoch" + "s" * (config.epochs != 1)
            self.say(f"Done: {', '.join(config.methods)} ({config.tasks} tasks x {epochs}, "
                     f"{n_train:,} training images per task).")
        except Exception as e:  # shown in the page as one line; the demo stays usable
            self.say(f"Training failed: {type(e).__name__}: {e}", error=True)
        finally:
            self.run_button.disabled = False
        return results
