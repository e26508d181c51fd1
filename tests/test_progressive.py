"""Progressive networks against an independent computation: a column's forward pass written out layer by layer
from the earlier columns' activations, the laterals reading frozen activations (no gradient reaches an earlier
column, which never changes again), task-IL's backward transfer zero to the last bit, parameters per column
growing linearly with the columns before it, and task inference among the columns."""
import pytest
import torch

from cl_course import RunConfig
from cl_course.methods import make_strategy
from cl_course.progressive import ProgressiveNetworks
from cl_course.train import fit
from helpers import random_tasks, small_mlp

SIZES = (8, 20, 10, 4)  # small_mlp's: input, the two hidden layers, a head's outputs


def trained(n, **kwargs):
    tasks, model, progressive, ended = random_tasks(n), small_mlp(n), ProgressiveNetworks(**kwargs), []
    history = fit(model, tasks, progressive, epochs=2, batch_size=20, lr=1e-2, progress=False,
                  on_task=lambda m, s, k: ended.append({n: p.detach().clone() for n, p in m.named_parameters()}))
    return model, progressive, history, ended


def by_hand(model, x, k):
    """Column k's logits: h_i = relu(W_i h_{i-1} + b_i + U_i relu(V_i (alpha_i [h_{i-1} of columns 0..k-1]) + c_i)),
    each column computed from the input up, the last layer without its ReLU."""
    p = dict(model.named_parameters())
    activations = []  # per column: [h_1, h_2, logits]
    for j in range(k + 1):
        h, mine = x, []
        for i in range(len(SIZES) - 1):
            z = h @ p[f"body.columns.{j}.layers.{i}.weight"].T + p[f"body.columns.{j}.layers.{i}.bias"]
            if j > 0 and i > 0:
                lateral = f"body.columns.{j}.laterals.{i - 1}"
                earlier = torch.cat([activations[e][i - 1] for e in range(j)], 1) * p[f"{lateral}.alpha"]
                reduced = torch.relu(earlier @ p[f"{lateral}.project.weight"].T + p[f"{lateral}.project.bias"])
                z = z + reduced @ p[f"{lateral}.out.weight"].T
            h = z if i == len(SIZES) - 2 else torch.relu(z)
            mine.append(h)
        activations.append(mine)
    return activations[k][-1]


def test_each_column_is_the_layer_by_layer_computation_over_the_earlier_columns():
    model, progressive, _, _ = trained(3)
    model.eval()
    for k, task in enumerate(random_tasks(3)):
        with torch.no_grad():
            torch.testing.assert_close(progressive.predict(model, task.x_test, task), by_hand(model, task.x_test, k))


def test_the_laterals_read_frozen_columns_which_get_no_gradient_and_never_change_again():
    model, progressive, history, ended = trained(3)
    final = dict(model.named_parameters())
    for k in range(3):
        mine = [n for n in final if n.startswith(f"body.columns.{k}.")]
        assert mine and all(torch.equal(final[n], ended[k][n]) for n in mine)
    tasks = random_tasks(3)
    model.train()
    progressive.before_task(model, tasks)  # the third column in training
    model(tasks[2].x_train).sum().backward()
    for name, parameter in model.named_parameters():
        assert (parameter.grad is not None) == name.startswith("body.columns.2."), name
    assert progressive.trained == 3 and len(model.body.columns) == 3


def test_backward_transfer_in_task_il_is_zero_to_the_last_bit():
    _, _, history, _ = trained(4)
    R = history.accuracy_matrix
    for j in range(4):
        assert all(R[i][j] == R[j][j] for i in range(j, 4)), (j, [R[i][j] for i in range(4)])


def test_a_columns_parameters_grow_linearly_with_the_columns_before_it():
    model, _, _, _ = trained(4)
    column = sum(a * b + b for a, b in zip(SIZES, SIZES[1:], strict=False))
    per_earlier = sum(a * a for a in SIZES[1:-1])  # V's weights: one block of a x a per earlier column
    fixed = sum(1 + a + a * b for a, b in zip(SIZES[1:-1], SIZES[2:], strict=False))  # alpha, V's bias, U
    for k in range(4):
        counted = sum(p.numel() for n, p in model.named_parameters() if n.startswith(f"body.columns.{k}."))
        assert counted == column + (k * per_earlier + fixed if k else 0), k


def test_task_inference_answers_with_the_most_confident_column():
    tasks, model = random_tasks(3, heads=False), small_mlp(1)
    progressive = ProgressiveNetworks(infer_task=True)
    fit(model, tasks, progressive, epochs=2, batch_size=20, lr=1e-2, progress=False)
    model.eval()
    x = tasks[2].x_test
    with torch.no_grad():
        every = torch.stack([by_hand(model, x, k) for k in range(3)])
        p = every.softmax(-1)
        entropy = -(p * p.log()).sum(-1)
        expected = torch.stack([every[int(entropy[:, i].argmin()), i] for i in range(len(x))])
        torch.testing.assert_close(progressive.predict(model, x, tasks[2]), expected)


def test_the_registry_builds_it_and_refuses_other_scenarios_without_inference():
    progressive = make_strategy("progressive", RunConfig(seed=5))
    assert isinstance(progressive, ProgressiveNetworks) and progressive.seed == 5
    with pytest.raises(ValueError, match="progressive chooses its context by the task"):
        RunConfig(methods=("progressive",)).check()
