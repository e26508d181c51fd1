"""Distillation (strategies.py): the loss against its formula written out, the old heads' outputs against
a hand-written forward pass, and LwF's replay probed inside fit() against copies of the model."""
import copy
import math

import pytest
import torch

from cl_course.data import Task
from cl_course.model import MLP
from cl_course.strategies import LwF, Replay, distillation_loss, frozen_copy, outputs_of_old_heads
from cl_course.train import fit


def small_model(heads=1, dtype=torch.float32):
    torch.manual_seed(0)
    return MLP(out_features=4, heads=heads, hidden=(6, 5), in_features=8).to(dtype)


def tasks_with_heads(heads, n_train=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [Task(f"t{k}", torch.randn(n_train, 8, generator=g), torch.randint(0, 4, (n_train,), generator=g),
                 torch.randn(6, 8, generator=g), torch.randint(0, 4, (6,), generator=g), head=h)
            for k, h in enumerate(heads)]


def by_hand(model, x, head):
    """The MLP's forward pass written out: relu(relu(x W1' + b1) W2' + b2) through head `head`'s layer."""
    h = x
    for layer in (model.fc1, model.fc2):
        h = (h @ layer.weight.T + layer.bias).clamp(min=0)
    out = model.heads[head]
    return h @ out.weight.T + out.bias


# ---------------------------------------------------------------- distillation_loss

@pytest.mark.parametrize("temperature", [1.0, 2.0, 3.5])
def test_distillation_loss_against_its_formula(temperature):
    student = [[1.0, 2.0, 0.5], [-1.0, 0.0, 2.5]]
    teacher = [[0.0, 1.0, 3.0], [2.0, -2.0, 0.5]]
    total = 0.0
    for s, t in zip(student, teacher, strict=True):
        zs = sum(math.exp(v / temperature) for v in s)
        zt = sum(math.exp(v / temperature) for v in t)
        for sj, tj in zip(s, t, strict=True):
            total -= math.exp(tj / temperature) / zt * math.log(math.exp(sj / temperature) / zs)
    expected = temperature ** 2 * total / len(student)
    got = distillation_loss(torch.tensor(student), torch.tensor(teacher), temperature).item()
    assert got == pytest.approx(expected, rel=1e-6)


def test_distillation_loss_is_smallest_when_the_student_copies_the_teacher():
    """Cross-entropy >= entropy, with equality when the distributions agree (shifting logits changes nothing)."""
    teacher = torch.tensor([[0.3, -1.0, 2.0, 0.1]])
    at_teacher = distillation_loss(teacher + 5.0, teacher, 2.0).item()
    p = torch.softmax(teacher / 2.0, 1)
    entropy = -(p * p.log()).sum().item() * 4.0
    assert at_teacher == pytest.approx(entropy, rel=1e-6)
    gen = torch.Generator().manual_seed(0)
    for _ in range(10):
        assert distillation_loss(teacher + torch.randn(1, 4, generator=gen), teacher, 2.0).item() > at_teacher


# ---------------------------------------------------------------- outputs_of_old_heads

def test_old_heads_outputs_of_a_shared_head_give_x_once():
    model, x = small_model(), torch.randn(5, 8)
    tasks = tasks_with_heads([0, 0, 0])
    xs, head, logits = outputs_of_old_heads(model, x, tasks)
    assert torch.equal(xs, x) and head.tolist() == [0] * 5
    torch.testing.assert_close(logits, by_hand(model, x, 0))
    assert not logits.requires_grad


def test_old_heads_outputs_of_task_il_heads_repeat_x_per_earlier_head_in_order():
    model, x = small_model(heads=4), torch.randn(3, 8)
    tasks = tasks_with_heads([2, 0, 2, 3, 1])  # earlier tasks' heads {2, 0, 3}; the current task's 1 is left out
    xs, head, logits = outputs_of_old_heads(model, x, tasks)
    assert head.tolist() == [0] * 3 + [2] * 3 + [3] * 3  # each head once, in order
    assert torch.equal(xs, torch.cat([x, x, x]))
    for block, h in enumerate((0, 2, 3)):
        torch.testing.assert_close(logits[3 * block:3 * block + 3], by_hand(model, x, h))
    assert not logits.requires_grad


def test_old_heads_outputs_keep_the_input_shape():
    model, x = small_model(heads=3), torch.randn(2, 2, 4)  # [N, 2, 4] inputs: the MLP flattens them
    xs, head, logits = outputs_of_old_heads(model, x, tasks_with_heads([0, 1, 2]))
    assert xs.shape == (4, 2, 4) and torch.equal(xs[2:], x) and head.tolist() == [0, 0, 1, 1]
    torch.testing.assert_close(logits[2:], by_hand(model, x.reshape(2, 8), 1))


def test_frozen_copy_is_detached_and_in_evaluation_mode():
    model = small_model()
    frozen = frozen_copy(model)
    assert not frozen.training and not any(p.requires_grad for p in frozen.parameters())
    with torch.no_grad():
        model.fc1.weight.add_(1.0)
    assert not torch.equal(frozen.fc1.weight, model.fc1.weight)  # a copy, not a view


# ---------------------------------------------------------------- LwF inside fit()

class ProbedLwF(LwF):
    def after_task(self, model, tasks):
        super().after_task(model, tasks)
        self.copies = getattr(self, "copies", []) + [copy.deepcopy(model)]

    def replay(self, model, x, tasks):
        out = super().replay(model, x, tasks)
        self.calls = getattr(self, "calls", []) + [(len(tasks), x, out)]
        return out


@pytest.mark.parametrize("heads", [[0, 1, 2], [0, 0, 0]])  # task-IL, and one shared head
def test_lwf_replays_the_batch_with_the_previous_models_logits(heads):
    tasks, lwf = tasks_with_heads(heads), ProbedLwF(temperature=3.0)
    model = small_model(heads=3 if heads[-1] else 1)
    fit(model, tasks, lwf, epochs=1, batch_size=8, lr=1e-2, progress=False)
    assert len(lwf.copies) == 3  # after every task, the last included
    assert {seen for seen, _, _ in lwf.calls} == {1, 2, 3}
    for seen, x, out in lwf.calls:
        if seen == 1:
            assert out is None  # nothing to distil during the first task
            continue
        previous = lwf.copies[seen - 2]  # the model as it was when the previous task ended
        old = sorted(set(heads[:seen - 1]))
        assert isinstance(out, Replay) and out.temperature == 3.0
        assert torch.equal(out.x, torch.cat([x] * len(old)))
        assert out.head.tolist() == [h for h in old for _ in range(len(x))]
        expected = torch.cat([by_hand(previous, x, h) for h in old])
        torch.testing.assert_close(out.target, expected)
        assert out.target.dtype == torch.float32 and not out.target.requires_grad
    assert not any(p.requires_grad for p in lwf.previous.parameters())
    # the model trained on after the copy task 3 distilled, so its targets were the old model's, not the current one's
    assert not torch.equal(lwf.copies[1].fc1.weight, model.fc1.weight)
    assert torch.equal(lwf.previous.fc1.weight, lwf.copies[-1].fc1.weight)
    assert torch.equal(lwf.previous.fc1.weight, model.fc1.weight)  # the last task's end: the final model


# ---------------------------------------------------------------- LwF over the classes seen (van de Ven & Tolias)

def log_softmax(values):
    top = max(values)
    z = math.log(sum(math.exp(v - top) for v in values)) + top
    return [v - z for v in values]


def test_lwf_seen_classes_only_against_a_hand_computation():
    """Class-IL, task 1 of classes 3 and 5, task 2 of 0 and 4, six outputs. In task 2 the current loss is the
    cross-entropy of a softmax over the outputs 0, 3, 4, 5 (the classes seen), and the distillation compares
    the previous and the new model's outputs 3 and 5 only, each softened by T, times T^2."""
    g = torch.Generator().manual_seed(0)
    tasks = [Task(f"t{k}", torch.randn(5, 8, generator=g), torch.tensor(labels), torch.randn(2, 8, generator=g),
                  torch.tensor(labels[:2]), head=0, classes=classes)
             for k, (labels, classes) in enumerate((([3, 5, 5, 3, 3], (3, 5)), ([0, 4, 4, 0, 4], (0, 4))))]
    model, temperature = MLP(out_features=6, hidden=(6, 5), in_features=8).double(), 1.7
    lwf = LwF(temperature=temperature, seen_classes_only=True)
    lwf.previous = frozen_copy(MLP(out_features=6, hidden=(6, 5), in_features=8).double())
    x, y = tasks[1].x_train.double(), tasks[1].y_train
    lwf.before_task(model, tasks)
    new, old = by_hand(model, x, 0).tolist(), by_hand(lwf.previous, x, 0).tolist()

    current = 0.0
    for logits, label in zip(new, y.tolist(), strict=True):
        seen = [logits[c] for c in (0, 3, 4, 5)]
        current -= log_softmax(seen)[(0, 3, 4, 5).index(label)]
    got = lwf.loss(model, x, y, model(x), tasks).item()
    assert got == pytest.approx(current / len(x), rel=1e-10)

    distilled = 0.0
    for student, teacher in zip(new, old, strict=True):
        p = [math.exp(v) for v in log_softmax([teacher[c] / temperature for c in (3, 5)])]
        q = log_softmax([student[c] / temperature for c in (3, 5)])
        distilled -= sum(pi * qi for pi, qi in zip(p, q, strict=True))
    replay = lwf.replay(model, x, tasks)
    assert replay.loss(model).item() == pytest.approx(temperature ** 2 * distilled / len(x), rel=1e-10)

    everything = LwF(temperature=temperature)  # the default: every output in both terms
    everything.previous = lwf.previous
    assert everything.loss(model, x, y, model(x), tasks).item() != pytest.approx(got, rel=1e-3)
    assert everything.replay(model, x, tasks).loss(model).item() != pytest.approx(replay.loss(model).item(), rel=1e-3)


def test_lwf_seen_classes_only_restricts_a_notebooks_distillation_too():
    shapes = []

    def distillation(logits, teacher_logits, temperature):
        shapes.append((tuple(logits.shape), tuple(teacher_logits.shape)))
        return distillation_loss(logits, teacher_logits, temperature)

    tasks = tasks_with_heads([0, 0, 0])
    for k, task in enumerate(tasks):
        task.classes = (k,)  # one class per task: the old ones are 0, then 0 and 1
        task.y_train = torch.full_like(task.y_train, k)
    lwf = LwF(distillation=distillation, seen_classes_only=True)
    fit(small_model(), tasks, lwf, epochs=1, batch_size=8, lr=1e-2, progress=False)
    assert {s for s, _ in shapes} == {(8, 1), (4, 1), (8, 2), (4, 2)} and all(a == b for a, b in shapes)
