"""The training loop, evaluation, and running several methods on the same tasks."""
import random
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from .context import ContextSpecific
from .data import BENCHMARKS, batch_indices, index_batches
from .model import MLP
from .methods import make_strategy


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
def evaluate(model, tasks, batch_size=8192, predict=None):
    """Accuracy (%) on each task's test set; predict(model, x, task) gives the scores of x, a batch of
    task's test inputs, with the model's head set to task.head (default: the logits)."""
    model.eval()
    predict = predict or (lambda model, x, task: model(x))
    correct = []
    for task in tasks:
        model.use_head(task.head)
        hits = sum((predict(model, x, task).argmax(1) == y).sum()
                   for x, y in index_batches(task.x_test, task.y_test, batch_size))
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
    task_inference: dict | None = None  # task name -> % of its test samples whose task was inferred right, at the
                                        # end (a context-specific method that infers the task: XdG --task-inference)

    @property
    def average_accuracy(self):
        """HW14's curve: the mean over seen tasks after every epoch."""
        return [sum(a) / len(a) for a in self.epoch_accuracy]


def fit(model, tasks, strategy, epochs=10, batch_size=128, lr=1e-4, eval_batch_size=8192,
        generator=None, on_epoch=None, progress=True, name=None, iterations=None, on_task=None):
    """Train on `tasks` one after another with `strategy`'s hooks, in the order strategies.Strategy
    describes; evaluate after every epoch (an epoch: one pass over the data, or `iterations` batches).
    on_task(model, strategy, k) is called when task k (from 0) is trained, before the strategy's
    after_task (a confusion matrix, say). History.importance is the Omega the last task trained under,
    not the one its after_task makes."""
    history = History(initial_accuracy=evaluate(model, tasks, eval_batch_size, strategy.predict),
                      epochs_per_task=epochs)
    bar = tqdm(total=0, desc=name or type(strategy).__name__, disable=not progress, leave=False, mininterval=0.5)
    for k, task in enumerate(tasks):
        seen = tasks[:k + 1]
        strategy.prepare_model(model, seen)  # first: a head it adds can be chosen, a parameter trained
        model.use_head(task.head)
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)  # recreated per task, as HW14
        strategy.before_task(model, seen)
        x_train, y_train, heads = strategy.training_data(seen)
        bar.total += epochs * (iterations or -(-len(x_train) // batch_size))  # per task: joint's data grows
        bar.refresh()
        for epoch in range(epochs):
            model.train()
            for idx in batch_indices(len(x_train), batch_size, True, generator, x_train.device, iterations):
                x, y = x_train[idx], y_train[idx]
                logits = model(x, heads[idx] if isinstance(heads, torch.Tensor) else heads)
                loss = strategy.loss(model, x, y, logits, seen)
                old = strategy.replay(model, x, seen)
                if old is not None:
                    loss = old.weighed_in(loss, model, len(seen))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                strategy.adjust_gradients(model, seen)
                optimizer.step()
                strategy.after_step(model, seen)
                bar.update()
            if epoch == epochs - 1:
                strategy.finish_task(model, seen)
            accuracy = evaluate(model, seen, eval_batch_size, strategy.predict)
            history.epoch_accuracy.append(accuracy)
            model.use_head(task.head)
            bar.set_postfix({"task": k + 1, "loss": f"{loss.item():.3f}",
                             "avg acc": f"{sum(accuracy) / len(accuracy):.2f}"})
            if on_epoch:
                on_epoch(history)
        if on_task:
            on_task(model, strategy, k)
        if k == len(tasks) - 1 and strategy.importance is not None:  # before after_task makes the next one;
            # a copy, should after_task change it in place
            history.importance = {n: t.detach().to("cpu", copy=True) for n, t in strategy.importance.items()}
        strategy.after_task(model, seen)
        history.accuracy_matrix.append(history.epoch_accuracy[-1] + evaluate(model, tasks[k + 1:], eval_batch_size,
                                                                             strategy.predict))
    bar.close()
    if isinstance(strategy, ContextSpecific) and strategy.infer_task:
        history.task_inference = strategy.inference_accuracy(model, tasks, eval_batch_size)
    return history


def load_tasks(config, device):
    """The config's benchmark (HW14's Permuted MNIST by default) in its scenario, on `device`."""
    return BENCHMARKS[config.benchmark].load(config, device)


def run_methods(config, tasks=None, on_epoch=None, progress=True, answers=None, make=None, on_task=None):
    """Run every method of `config` from the same initial weights; return {method: History}.

    tasks: a list of data.Task, all on one device (default: load_tasks on the config's device).
    on_epoch(method, history) is called after every epoch (live plots); on_task as fit's.
    answers: importance functions written in the notebook, by library name (see make_strategy).
    make(method): the Strategy to train instead of the library's (a class written in the notebook).
    """
    config.check()
    tasks = tasks or load_tasks(config, select_device(config.device))
    device = tasks[0].x_train.device
    out_features = max(int(t.y_train.max()) for t in tasks) + 1
    heads = max(t.head for t in tasks) + 1 if config.the_scenario() == "task" else 1  # task-IL: one per task
    results = {}
    for method in config.methods:
        seed_everything(config.seed)
        model = MLP(out_features, heads=heads, hidden=config.hidden_sizes(),
                    in_features=tasks[0].x_train[0].numel()).to(device)
        strategy = make(method) if make else make_strategy(method, config, answers)
        generator = torch.Generator().manual_seed(config.seed)
        start = time.perf_counter()
        results[method] = fit(model, tasks, strategy, config.epochs, config.batch_size, config.lr,
                              config.eval_batch_size, generator, progress=progress, name=method,
                              on_epoch=on_epoch and (lambda h, m=method: on_epoch(m, h)),
                              iterations=config.iterations, on_task=on_task)
        results[method].wall_time = time.perf_counter() - start
    return results
