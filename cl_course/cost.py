"""What a method costs as the tasks grow: the parameters of its model, the bytes of the state its strategy keeps
(importances, anchors, masks, gates, frozen copies, generators, replay memories) and the seconds each task's
training takes, measured after every task; and the growth law (constant, linear, quadratic) of a cost measured at
several numbers of tasks.

Stored bytes are those of the distinct tensor storages reachable from the strategy's attributes (through dicts,
lists, tuples, sets, modules and plain objects such as a replay memory), each counted once under the first
attribute path that reaches it. A view counts its whole storage, since it keeps it alive. Not counted: the model's
own parameters and buffers (they are the parameters), a data.Task (the stream's data, which the loop holds
anyway), gradients, generators and Python numbers.

The seconds of a task are its training, from its prepare_model to the end of its finish_task (less the time spent
in predict: the loop's evaluations between epochs, when there are several), plus its after_task (the
consolidation belongs to the task: EWC's Fisher, a memory's filling). The loop's evaluations are left out because
they grow with the number of tasks for every method alike. fit's on_task and on_epoch callbacks could not give
this: their windows hold the evaluation of every seen and every later task, and after_task runs after on_task.
"""
import math
import time
from dataclasses import dataclass, replace

import torch
from torch import nn

from .data import Task
from .methods import make_strategy
from .train import run_methods

LAWS = {0: "constant", 1: "linear", 2: "quadratic"}


@dataclass(frozen=True)
class TaskCost:
    """A method's cost once task `task` (from 1) is trained and consolidated."""
    task: int
    parameters: int       # of the model: every network, column, head and embedding it holds
    parameter_bytes: int
    stored: dict          # attribute path -> bytes of the strategy's state ("importance", "memory.x", ...)
    seconds: float        # training time of the task (the module's docstring says what is in it)

    @property
    def stored_bytes(self):
        return sum(self.stored.values())

    @property
    def total_bytes(self):
        return self.parameter_bytes + self.stored_bytes


def _storage(tensor):
    return tensor.device, tensor.untyped_storage().data_ptr()


def stored_bytes(strategy, model):
    """{attribute path: bytes} of the tensors `strategy` holds apart from `model`'s own parameters and buffers."""
    counted = {_storage(t) for t in (*model.parameters(), *model.buffers())}
    visited, breakdown = set(), {}

    def walk(obj, path):
        if obj is model or id(obj) in visited:
            return
        if isinstance(obj, torch.Tensor):
            if _storage(obj) not in counted and obj.untyped_storage().nbytes():
                counted.add(_storage(obj))
                breakdown[path] = breakdown.get(path, 0) + obj.untyped_storage().nbytes()
            return
        visited.add(id(obj))  # a container or object: once, whatever refers to it again (cycles included)
        if isinstance(obj, nn.Module):
            for tensor in (*obj.parameters(), *obj.buffers()):
                walk(tensor, path)
        elif isinstance(obj, dict):
            for value in obj.values():  # an optimizer's state is keyed by its parameters: the values are its own
                walk(value, path)
        elif isinstance(obj, list | tuple | set | frozenset):
            for item in obj:
                walk(item, path)
        elif not isinstance(obj, Task) and not callable(obj) and hasattr(obj, "__dict__"):
            for name, value in vars(obj).items():
                walk(value, f"{path}.{name}" if path else name)

    walk(strategy, "")
    return breakdown


def _now(model):
    """perf_counter once the model's device has finished its queued work (a GPU runs asynchronously)."""
    device = next(model.parameters()).device
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


class Metered:
    """`strategy` with its hooks called as they are (the run's results do not change) that records a TaskCost in
    `costs` after each task's after_task. Every attribute it does not time is the strategy's own."""

    def __init__(self, strategy):
        self.strategy = strategy
        self.costs = []
        self.started = None
        self.evaluating = 0.0  # seconds in predict since the task's prepare_model
        self.training = 0.0    # seconds from the task's prepare_model to the end of its finish_task, less evaluating

    def __getattr__(self, name):  # called only for names the meter lacks
        if name == "strategy":  # not set yet (a copy being made): no endless recursion
            raise AttributeError(name)
        return getattr(self.strategy, name)

    def prepare_model(self, model, tasks):
        self.started, self.evaluating = _now(model), 0.0
        self.strategy.prepare_model(model, tasks)

    def predict(self, model, x, task):
        start = _now(model)
        scores = self.strategy.predict(model, x, task)
        self.evaluating += _now(model) - start
        return scores

    def finish_task(self, model, tasks):
        self.strategy.finish_task(model, tasks)
        self.training = _now(model) - self.started - self.evaluating

    def after_task(self, model, tasks):
        start = _now(model)
        self.strategy.after_task(model, tasks)
        seconds = self.training + _now(model) - start
        parameters = list(model.parameters())
        self.costs.append(TaskCost(len(tasks), sum(p.numel() for p in parameters),
                                   sum(p.numel() * p.element_size() for p in parameters),
                                   stored_bytes(self.strategy, model), seconds))


def measure(config, method, tasks=None, progress=False, answers=None):
    """[TaskCost], one per task, of `method` trained as run_methods trains it on `config`'s tasks (or `tasks`), with
    the notebook's `answers` (by library name) in place of the library's functions."""
    meters = {}

    def make(name):
        meters[name] = Metered(make_strategy(name, config, answers))
        return meters[name]

    run_methods(replace(config, methods=(method,)), tasks, progress=progress, make=make)
    return meters[method].costs


def growth_exponent(tasks, costs):
    """The slope of log(cost) against log(tasks) between the first and the last number of tasks: cost ~ T^slope.
    None where a cost is 0 (nothing stored)."""
    if min(costs[0], costs[-1]) <= 0:
        return None
    return math.log(costs[-1] / costs[0]) / math.log(tasks[-1] / tasks[0])


def growth_law(exponent):
    """The law nearest to `exponent`: constant, linear, quadratic, or faster than quadratic beyond 2.5."""
    if exponent is None:
        return "none"
    if exponent > 2.5:
        return "faster than quadratic"
    return LAWS[min(LAWS, key=lambda k: abs(k - exponent))]
