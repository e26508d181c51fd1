"""The training loop, evaluation, and running several methods on the same tasks."""
import random
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .data import index_batches, permuted_mnist
from .model import MLP
from .strategies import make_strategy


def select_device(name="auto"):
    """auto: CUDA, else Apple's MPS, else CPU. Anything else is passed to torch.device."""
    if name != "auto":
        try:
            device = torch.device(name)
        except RuntimeError:
            raise ValueError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError("device cuda asked for but torch sees no CUDA GPU; use --device auto or cpu")
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise ValueError("device mps asked for but it is not available; use --device auto or cpu")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # seeds CUDA's generators too


@torch.no_grad()
def evaluate(model, tasks, batch_size=8192):
    """Accuracy (%) on each task's test set."""
    model.eval()
    correct = []
    for task in tasks:
        model.use_head(task.head)
        hits = sum((model(x).argmax(1) == y).sum() for x, y in index_batches(task.x_test, task.y_test, batch_size))
        correct.append(100.0 * hits / len(task.y_test))
    return torch.stack(correct).tolist() if correct else []  # CPU-GPU sync point, once per call


@dataclass
class History:
    """What a run of one method records; accuracies in %."""
    epoch_accuracy: list = field(default_factory=list)   # per epoch: accuracy on each task seen so far
    accuracy_matrix: list = field(default_factory=list)  # R[i][j]: task j after training task i (all j)
    initial_accuracy: list = field(default_factory=list)  # each task before any training (for FWT)
    epochs_per_task: int = 0
    wall_time: float = 0.0
    importance: dict | None = None  # the Omega the last task trained under, on the CPU (regularisers only)

    @property
    def average_accuracy(self):
        """HW14's curve: the mean over seen tasks after every epoch."""
        return [sum(a) / len(a) for a in self.epoch_accuracy]


def fit(model, tasks, strategy, epochs=10, batch_size=128, lr=1e-4, eval_batch_size=8192,
        generator=None, on_epoch=None, progress=True, name=None):
    """Train on `tasks` one after another with `strategy`'s hooks; evaluate after every epoch."""
    history = History(initial_accuracy=evaluate(model, tasks, eval_batch_size), epochs_per_task=epochs)
    bar = tqdm(total=0, desc=name or type(strategy).__name__, disable=not progress, leave=False, mininterval=0.5)
    for k, task in enumerate(tasks):
        seen = tasks[:k + 1]
        model.use_head(task.head)
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)  # recreated per task, as HW14
        strategy.before_task(model, seen)
        x_train, y_train = strategy.training_data(seen)
        bar.total += epochs * -(-len(x_train) // batch_size)  # known per task: joint training's data grows
        bar.refresh()
        for _ in range(epochs):
            model.train()
            for x, y in index_batches(x_train, y_train, batch_size, shuffle=True, generator=generator):
                loss = F.cross_entropy(model(x), y)
                penalty = strategy.penalty(model)
                if penalty is not None:
                    loss = loss + strategy.lam * penalty
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                strategy.after_step(model, seen)
                bar.update()
            accuracy = evaluate(model, seen, eval_batch_size)
            history.epoch_accuracy.append(accuracy)
            model.use_head(task.head)
            bar.set_postfix({"task": k + 1, "loss": f"{loss.item():.3f}",
                             "avg acc": f"{sum(accuracy) / len(accuracy):.2f}"})
            if on_epoch:
                on_epoch(history)
        if k < len(tasks) - 1:  # what a strategy keeps after the last task would never be used
            strategy.after_task(model, seen)
        history.accuracy_matrix.append(history.epoch_accuracy[-1] + evaluate(model, tasks[k + 1:], eval_batch_size))
    bar.close()
    if strategy.importance is not None:
        history.importance = {n: t.detach().cpu() for n, t in strategy.importance.items()}
    return history


def load_tasks(config, device):
    """HW14's Permuted MNIST as the config describes it, on `device`."""
    return permuted_mnist(config.tasks, config.data_root, device, config.subset, config.permutation_seed,
                          subset_seed=config.seed, test_subset=config.test_subset)


def run_methods(config, tasks=None, on_epoch=None, progress=True, answers=None):
    """Run every method of `config` from the same initial weights; return {method: History}.

    tasks: a list of data.Task, all on one device (default: load_tasks on the config's device).
    on_epoch(method, history) is called after every epoch (live plots).
    answers: importance functions written in the notebook, by library name (see make_strategy).
    """
    config.check()
    tasks = tasks or load_tasks(config, select_device(config.device))
    device = tasks[0].x_train.device
    out_features = max(int(t.y_train.max()) for t in tasks) + 1
    results = {}
    for method in config.methods:
        seed_everything(config.seed)
        model = MLP(out_features, heads=len(tasks) if config.multi_head else 1).to(device)
        strategy = make_strategy(method, config, answers)
        generator = torch.Generator().manual_seed(config.seed)
        start = time.perf_counter()
        results[method] = fit(model, tasks, strategy, config.epochs, config.batch_size, config.lr,
                              config.eval_batch_size, generator, progress=progress, name=method,
                              on_epoch=on_epoch and (lambda h, m=method: on_epoch(m, h)))
        results[method].wall_time = time.perf_counter() - start
    return results
