"""The cost table against independent counts: EWC's Omega and anchor, ER's memory, PackNet's owner tensors, LwF's
frozen copy, HAT's embeddings and progressive columns counted from their definitions; the seconds of a task hold
its after_task and not its evaluations; and metering a run leaves its results as they were."""
import time
from dataclasses import replace

import pytest
import torch

from cl_course import RunConfig
from cl_course.cost import Metered, growth_exponent, growth_law, measure
from cl_course.data import Task
from cl_course.icarl import quota
from cl_course.methods import make_strategy
from cl_course.strategies import Strategy
from cl_course.train import run_methods

IN, HIDDEN, OUT = 8, (20, 10), 4  # inputs, hidden layers, each head's outputs
SAMPLES = 80
BUDGET = 30


def tasks_of(n, seed=0, heads=True):
    g = torch.Generator().manual_seed(seed)
    return [Task(f"t{k}", torch.randn(SAMPLES, IN, generator=g), torch.randint(0, OUT, (SAMPLES,), generator=g),
                 torch.randn(40, IN, generator=g), torch.randint(0, OUT, (40,), generator=g), head=k if heads else 0)
            for k in range(n)]


def config_of(method, n, scenario="task", **kwargs):
    return RunConfig(methods=(method,), scenario=scenario, tasks=n, hidden=HIDDEN, epochs=1, iterations=3,
                     batch_size=20, protocol="paper", memory_budget=BUDGET, device="cpu", **kwargs)


def mlp_parameters(heads):
    sizes = (IN, *HIDDEN)
    body = sum(a * b + b for a, b in zip(sizes, sizes[1:], strict=False))
    return body + heads * (HIDDEN[-1] * OUT + OUT)


def metered(method, n, **kwargs):
    """(the Metered strategy, the model) after `method` has trained on n synthetic task-IL tasks."""
    config, kept = config_of(method, n, **kwargs), {}

    def make(name):
        kept["meter"] = Metered(make_strategy(name, config))
        return kept["meter"]

    run_methods(config, tasks_of(n), progress=False, make=make,
                on_task=lambda model, strategy, k: kept.update(model=model))
    return kept["meter"], kept["model"]


def test_ewc_stores_one_omega_and_one_anchor_of_every_parameter_in_float32():
    meter, model = metered("ewc", 2)
    parameters = mlp_parameters(heads=2)
    assert sum(p.numel() for p in model.parameters()) == parameters
    for name in ("importance", "anchor"):  # read from the strategy itself
        tensors = getattr(meter.strategy, name).values()
        assert sum(t.numel() * t.element_size() for t in tensors) == parameters * 4
    assert [c.stored for c in meter.costs] == [{"importance": parameters * 4, "anchor": parameters * 4}] * 2
    assert meter.costs[-1].parameters == parameters and meter.costs[-1].parameter_bytes == parameters * 4


def test_er_stores_its_samples_and_their_labels_once_whatever_the_classes_dropped():
    meter, _ = metered("er", 2)
    memory = meter.strategy.memory
    rows = len(memory)
    assert rows == 2 * OUT * quota(BUDGET, 2 * OUT)  # every class has more samples than its quota
    stored = meter.costs[-1].stored
    # the inputs once (float32), labels, heads and tasks (int64): the classes' entries are views of the stacked
    # memory, and task 1's classes no longer keep their first, larger quota alive
    inputs = [v for k, v in stored.items() if k in ("memory.x", "memory.classes")]
    assert inputs == [rows * IN * 4]  # once, under the name the walk meets first
    assert stored["memory.y"] == stored["memory.head"] == stored["memory.task"] == rows * 8
    assert sum(v for k, v in stored.items() if k.startswith("memory.")) == rows * (IN * 4 + 3 * 8)


def test_packnet_stores_one_int64_owner_per_hidden_weight():
    meter, _ = metered("packnet", 3)
    sizes = (IN, *HIDDEN)
    weights = sum(a * b for a, b in zip(sizes, sizes[1:], strict=False))
    assert meter.costs[-1].stored == {"owner": weights * 8}


def test_lwf_stores_a_frozen_copy_of_the_model():
    meter, _ = metered("lwf", 2)
    assert meter.costs[-1].stored == {"previous": mlp_parameters(heads=2) * 4}


def test_hat_embeddings_are_parameters_one_per_hidden_unit_and_task():
    meter, _ = metered("hat", 3)
    assert [c.parameters for c in meter.costs] == [mlp_parameters(heads=3) + k * sum(HIDDEN) for k in (1, 2, 3)]
    assert meter.costs[-1].stored == {"cumulative": sum(HIDDEN) * 4}


def test_progressive_columns_are_the_parameters_and_grow_with_the_columns_before_each():
    costs = measure(config_of("progressive", 4), "progressive", tasks_of(4))
    sizes = (IN, *HIDDEN, OUT)
    column = sum(a * b + b for a, b in zip(sizes, sizes[1:], strict=False))
    lateral = sum(1 + a + a * b for a, b in zip(sizes[1:-1], sizes[2:], strict=False))  # alpha, V's bias, U
    per_earlier = sum(a * a for a in sizes[1:-1])  # V's weights: a block of a x a per earlier column
    every = sum(column + (k * per_earlier + lateral if k else 0) for k in range(4))
    assert [c.parameters for c in costs] == [every] * 4  # every task's column is made when it is first evaluated
    assert all(c.stored == {} for c in costs)


def test_xdg_stores_a_gate_per_task():
    meter, _ = metered("xdg", 3)
    assert meter.costs[-1].stored == {"gates": 3 * sum(HIDDEN) * 4}


def test_metering_leaves_the_results_as_they_were():
    for method in ("ewc", "er", "hat"):
        config = config_of(method, 3)
        plain = run_methods(config, tasks_of(3), progress=False)[method]
        kept = run_methods(config, tasks_of(3), progress=False,
                           make=lambda m, c=config: Metered(make_strategy(m, c)))
        assert kept[method].accuracy_matrix == plain.accuracy_matrix, method


class Slow(Strategy):
    """Sleeps in after_task (consolidation, counted) and in predict (evaluation, not counted)."""
    pause = 0.3  # wide: a task's own training (a few ms) must fit in one pause on a busy machine

    def after_task(self, model, tasks):
        time.sleep(self.pause)

    def predict(self, model, x, task):
        time.sleep(self.pause)
        return model(x)


def test_a_tasks_seconds_hold_its_after_task_and_not_its_evaluations():
    meter = Metered(Slow())
    config = replace(config_of("baseline", 3), epochs=2)  # the first epoch's evaluation falls inside the training
    run_methods(config, tasks_of(3), progress=False, make=lambda m: meter)
    assert len(meter.costs) == 3
    # each epoch evaluates the 1-3 tasks seen, at least one pause of predict, none of it counted
    assert all(Slow.pause <= c.seconds < 2 * Slow.pause for c in meter.costs)


def test_growth_laws():
    ts = (5, 10, 20, 50)
    assert growth_exponent(ts, [7.0] * 4) == 0 and growth_law(0.1) == "constant"
    assert growth_exponent(ts, [3.0 * t for t in ts]) == pytest.approx(1) and growth_law(0.8) == "linear"
    assert growth_exponent(ts, [t * t + 0.0 for t in ts]) == pytest.approx(2) and growth_law(1.6) == "quadratic"
    assert growth_law(3.0) == "faster than quadratic"
    assert growth_exponent(ts, [0, 0, 0, 0]) is None and growth_law(None) == "none"
