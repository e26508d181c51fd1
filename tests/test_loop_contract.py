"""The contract between train.fit and a Strategy, as Strategy's docstring writes it down: the order of the
hooks, parameters a strategy adds before the optimiser is built, after_task after every task, the task that
predict is given, and the weight of a replayed loss."""
import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cl_course.strategies import Replay, Strategy
from cl_course.train import fit
from helpers import gradient
from test_strategies import small_model, synthetic_tasks


class Calls(Strategy):
    """Records each hook, the optimiser's zero_grad and step, and (through a hook on the loss) backward."""

    def __init__(self, calls):
        super().__init__()
        self.calls = calls

    def prepare_model(self, model, tasks):
        self.calls.append(("prepare_model", len(tasks)))

    def before_task(self, model, tasks):
        self.calls.append(("before_task", len(tasks)))

    def training_data(self, tasks):
        self.calls.append(("training_data", len(tasks)))
        return super().training_data(tasks)

    def loss(self, model, x, y, logits, tasks):
        self.calls.append("loss")
        loss = super().loss(model, x, y, logits, tasks)
        loss.register_hook(lambda grad: self.calls.append("backward"))
        return loss

    def replay(self, model, x, tasks):
        self.calls.append("replay")

    def adjust_gradients(self, model, tasks):
        self.calls.append("adjust_gradients")

    def after_step(self, model, tasks):
        self.calls.append("after_step")

    def after_task(self, model, tasks):
        self.calls.append(("after_task", len(tasks)))

    def predict(self, model, x, task):
        assert not model.training and not torch.is_grad_enabled()
        self.calls.append(("predict", task.name))
        return super().predict(model, x, task)


@pytest.fixture
def recording_adam(monkeypatch):
    """torch.optim.Adam, recording its construction, zero_grad and step into the list it returns."""
    calls, adam = [], torch.optim.Adam

    class RecordingAdam(adam):
        def __init__(self, params, **kw):
            calls.append("optimizer")
            super().__init__(params, **kw)

        def zero_grad(self, set_to_none=True):
            calls.append("zero_grad")
            super().zero_grad(set_to_none)

        def step(self, closure=None):
            calls.append("step")
            return super().step(closure)

    monkeypatch.setattr(torch.optim, "Adam", RecordingAdam)
    return calls


def test_fit_calls_the_hooks_in_the_documented_order(recording_adam):
    calls, tasks, model = recording_adam, synthetic_tasks(3, n_train=40), small_model()
    model.register_forward_pre_hook(lambda module, args: calls.append("forward") if module.training else None)
    fit(model, tasks, Calls(calls), epochs=2, batch_size=20, progress=False,
        on_task=lambda model, strategy, k: calls.append(("on_task", k)))
    batch = ["forward", "loss", "replay", "zero_grad", "backward", "adjust_gradients", "step", "after_step"]
    expected = [("predict", t.name) for t in tasks]  # before any training
    for k in range(3):
        seen = k + 1
        expected += [("prepare_model", seen), "optimizer", ("before_task", seen), ("training_data", seen)]
        expected += (batch * 2 + [("predict", t.name) for t in tasks[:seen]]) * 2  # 2 batches of 20, 2 epochs
        expected += [("on_task", k), ("after_task", seen)] + [("predict", t.name) for t in tasks[seen:]]
    assert calls == expected


def test_after_task_is_called_after_every_task_and_the_last_row_is_the_last_evaluation():
    """after_task runs 3 times on 3 tasks; the accuracy matrix's last row is the last epoch's evaluation, made
    before it: an after_task that spoils predict cannot reach it."""

    class Spoils(Strategy):
        ends = 0

        def after_task(self, model, tasks):
            self.ends += 1

        def predict(self, model, x, task):
            logits = model(x)
            return -logits if self.ends == 3 else logits

    tasks, strategy = synthetic_tasks(3), Spoils()
    history = fit(small_model(), tasks, strategy, epochs=1, batch_size=30, progress=False)
    assert strategy.ends == 3
    assert history.accuracy_matrix[-1] == history.epoch_accuracy[-1]
    rerun = fit(small_model(), tasks, Strategy(), epochs=1, batch_size=30, progress=False)
    assert history.accuracy_matrix == rerun.accuracy_matrix


class Gated(Strategy):
    """One gate per task on the logits, added to the model by `hook` (prepare_model or before_task); at each
    task's end, whether its gate has a gradient and whether it moved."""

    def __init__(self, hook):
        super().__init__()
        self.gates, self.ends = [], []
        setattr(self, hook, self.add_gate)

    def add_gate(self, model, tasks):
        gate = nn.Parameter(torch.ones(4))
        model.register_parameter(f"gate{len(tasks)}", gate)
        self.gates.append(gate)

    def loss(self, model, x, y, logits, tasks):
        return F.cross_entropy(logits * self.gates[-1], y)

    def after_task(self, model, tasks):
        gate = self.gates[-1]
        self.ends.append((gate.grad is not None and bool(gate.grad.abs().sum() > 0),
                          not torch.equal(gate.detach(), torch.ones(4))))


@pytest.mark.parametrize("hook, trained", [("prepare_model", True), ("before_task", False)])
def test_a_parameter_prepare_model_adds_reaches_the_optimiser(hook, trained):
    """A gate added in prepare_model moves in training; one added in before_task, after the optimiser is
    built, gets a gradient but never moves (the difference the test must see)."""
    strategy = Gated(hook)
    fit(small_model(), synthetic_tasks(2), strategy, epochs=1, batch_size=30, lr=1e-2, progress=False)
    assert strategy.ends == [(True, trained)] * 2


def test_predict_is_given_the_task_evaluated_with_its_head_chosen():
    class Heads(Strategy):
        def __init__(self):
            super().__init__()
            self.seen = []

        def predict(self, model, x, task):
            self.seen.append((task.name, model.head == task.head, len(x) == len(task.x_test)))
            return model(x)

    tasks, strategy = synthetic_tasks(3), Heads()
    fit(small_model(heads=3), tasks, strategy, epochs=1, batch_size=30, progress=False)
    names = [t.name for t in tasks]
    # before training: every task; after each task's epoch: the seen ones; after its after_task: the rest
    expected = names + names[:1] + names[1:] + names[:2] + names[2:] + names
    assert strategy.seen == [(n, True, True) for n in expected]


class OneBatchReplay(Strategy):
    """Replays the same labelled samples beside every batch with `weight` as the current batch's share, and
    keeps each task's starting model, its (one) batch and the gradient the loop took of it."""

    def __init__(self, weight, replayed):
        super().__init__()
        self.weight, self.replayed, self.record = weight, replayed, []

    def before_task(self, model, tasks):
        self.start = copy.deepcopy(model)

    def loss(self, model, x, y, logits, tasks):
        self.batch = x, y
        return super().loss(model, x, y, logits, tasks)

    def replay(self, model, x, tasks):
        return Replay(*self.replayed, head=0, current_weight=self.weight)

    def adjust_gradients(self, model, tasks):
        self.record.append((self.start, self.batch, {n: p.grad.clone() for n, p in model.named_parameters()}))


@pytest.mark.parametrize("weight", [0.25, None])
def test_replay_current_weight_sets_the_share_of_the_current_batch(weight):
    """One batch per task: the loop's gradient is that of w * CE(current) + (1 - w) * CE(replayed) at the task's
    start, w = 0.25 when given, else 1/t (1 and 1/2 on tasks 1 and 2)."""
    g = torch.Generator().manual_seed(3)
    replayed = torch.randn(10, 8, generator=g), torch.randint(0, 4, (10,), generator=g)
    strategy = OneBatchReplay(weight, replayed)
    fit(small_model(), synthetic_tasks(2, n_train=30), strategy, epochs=1, batch_size=30, lr=1e-2, progress=False)
    assert len(strategy.record) == 2
    for t, (start, (x, y), got) in enumerate(strategy.record, start=1):
        w = 1 / t if weight is None else weight
        expected = gradient(start, w * F.cross_entropy(start(x), y) + (1 - w) * F.cross_entropy(start(replayed[0]),
                                                                                                  replayed[1]))
        for n in expected:
            torch.testing.assert_close(got[n], expected[n])
    assert Replay(*replayed).current_weight is None  # the default: 1/t
