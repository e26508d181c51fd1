"""HAT against hand computations: the compensated embedding gradient, the gradient mask of the cumulative
attention, the annealing's schedule, and gates that end almost binary and keep an earlier task's answers."""
import math

import pytest
import torch

from cl_course import RunConfig
from cl_course.data import Task
from cl_course.hat import HAT, S_MAX, annealed, compensation
from cl_course.methods import make_strategy
from cl_course.model import MLP
from cl_course.train import fit
from helpers import most_confident


def tasks_of(n, seed=0):
    """Learnable tasks: the label is which of four fixed directions a sample is nearest."""
    g = torch.Generator().manual_seed(seed)
    tasks = []
    for k in range(n):
        centres = torch.randn(4, 8, generator=g) * 3
        x, xt = torch.randn(200, 8, generator=g), torch.randn(100, 8, generator=g)
        tasks.append(Task(f"t{k}", x, (x @ centres.T).argmax(1), xt, (xt @ centres.T).argmax(1), head=k))
    return tasks


def model_of(heads):
    torch.manual_seed(0)
    return MLP(out_features=4, heads=heads, hidden=(30, 20), in_features=8)


def test_the_compensation_by_hand():
    e, s = torch.tensor([0.5, -1.0, 6.0]), 10.0
    expected = [S_MAX * (math.cosh(s * v) + 1) / (s * (math.cosh(v) + 1)) for v in (0.5, -1.0)]
    expected.append(S_MAX * (math.cosh(50.0) + 1) / (s * (math.cosh(6.0) + 1)))  # s e = 60 clamped at 50
    torch.testing.assert_close(compensation(e, s), torch.tensor(expected))


def test_s_goes_from_one_over_s_max_towards_s_max_within_an_epoch():
    assert annealed(0, 10) == 1 / S_MAX
    assert annealed(5, 10) == pytest.approx(1 / S_MAX + (S_MAX - 1 / S_MAX) / 2)
    assert annealed(9, 10) < S_MAX


def test_the_embedding_gradient_is_the_gates_gradient_rescaled_and_the_weights_masked_by_hand():
    tasks, model = tasks_of(2), model_of(2)
    hat = HAT(batch_size=50)
    hat.prepare_model(model, tasks[:1])
    hat.before_task(model, tasks[:1])
    hat.cumulative = [torch.linspace(0, 1, 30), torch.linspace(1, 0, 20)]  # as if a task had ended
    x, y = tasks[0].x_train[:50], tasks[0].y_train[:50]
    model.train()
    loss = hat.loss(model, x, y, model(x), tasks[:1])
    loss.backward()
    raw = [e[0].grad.clone() for e in model.hat_embeddings]
    weight_grads = [layer.weight.grad.clone() for layer in model.hidden]
    hat.adjust_gradients(model, tasks[:1])
    for e, g in zip(model.hat_embeddings, raw, strict=True):
        torch.testing.assert_close(e[0].grad, g * compensation(e[0].detach(), hat.s))
    a1, a2 = hat.cumulative
    torch.testing.assert_close(model.fc1.weight.grad, weight_grads[0] * (1 - a1)[:, None])
    by_hand = torch.tensor([[1 - min(a2[i].item(), a1[j].item()) for j in range(30)] for i in range(20)])
    torch.testing.assert_close(model.fc2.weight.grad, weight_grads[1] * by_hand)


def test_gates_end_almost_binary_and_a_later_task_barely_moves_an_earlier_ones_answers():
    tasks, model = tasks_of(2), model_of(2)
    hat = HAT(batch_size=20)
    history = fit(model, tasks, hat, epochs=6, batch_size=20, lr=5e-3, progress=False)
    gates = torch.cat(hat.gates(model, 0, S_MAX))
    assert ((gates < 0.01) | (gates > 0.99)).float().mean() > 0.95
    R = history.accuracy_matrix
    assert R[0][0] > 40 and R[1][0] >= R[0][0] - 2.0, R  # chance is 25; 2 of task 1's 100 test samples at most
    assert 0 < hat.units_used()[0] < 100


def test_the_registry_builds_it_and_refuses_other_scenarios_without_inference():
    assert isinstance(make_strategy("hat", RunConfig(batch_size=64)), HAT)
    with pytest.raises(ValueError, match="hat chooses its context by the task"):
        RunConfig(methods=("hat",)).check()
    assert make_strategy("hat", RunConfig(methods=("hat",), task_inference=True).check()).infer_task


def test_without_the_task_it_answers_under_the_most_confident_embedding():
    tasks, model = tasks_of(3), model_of(1)  # one shared head, as in domain- and class-IL
    hat = HAT(batch_size=20, infer_task=True, seed=2)
    history = fit(model, tasks, hat, epochs=2, batch_size=20, lr=5e-3, progress=False)
    model.eval()
    x = tasks[2].x_test
    with torch.no_grad():
        got = hat.predict(model, x, tasks[2])
        every = []
        for k in range(3):  # under task k's gates at s_max, by hand
            h = x
            for layer, embeddings in zip(model.hidden, model.hat_embeddings, strict=True):
                h = torch.relu(h @ layer.weight.T + layer.bias) * torch.sigmoid(S_MAX * embeddings[k])  # no hook
            every.append(model.heads[0](h))
    answers, chosen = most_confident(every)
    torch.testing.assert_close(got, answers)
    assert history.task_inference["t2"] == pytest.approx(100 * chosen.count(2) / len(x))
