"""XdG against independent computations: the gate's size, the gated forward pass written out layer by layer,
the weights of switched-off units left exactly as they were, task inference as an explicit loop over gates, the
combination with SI, and the one-line refusals where the task is not given."""
import pytest
import torch
import torch.nn.functional as F

from cl_course import RunConfig
from cl_course.methods import make_strategy
from cl_course.train import evaluate, fit
from cl_course.xdg import XdG, XdGSI
from helpers import random_tasks, small_mlp


def by_hand(model, x, gates):
    """The gated MLP written out: each hidden layer's ReLU output times its 0/1 gate, then the head."""
    h = x
    for layer, gate in zip(model.hidden, gates, strict=True):
        h = torch.relu(h @ layer.weight.T + layer.bias) * gate
    head = model.heads[model.head]
    return h @ head.weight.T + head.bias


def test_each_task_keeps_a_fifth_of_each_layer_drawn_from_the_seed():
    model, xdg = small_mlp(), XdG(gate_seed=3)
    first, second = xdg.gate(model, 0), xdg.gate(model, 1)
    assert [int(g.sum()) for g in first] == [4, 2] and all(set(g.tolist()) == {0.0, 1.0} for g in first)
    assert any(not torch.equal(a, b) for a, b in zip(first, second, strict=True))
    again = XdG(gate_seed=3)
    assert all(torch.equal(a, b) for a, b in zip(again.gate(model, 0), first, strict=True))
    with pytest.raises(ValueError, match="fraction of units switched off"):
        XdG(gated=1.0)


def test_the_gated_forward_pass_is_the_layer_by_layer_product():
    tasks, model = random_tasks(2), small_mlp(heads=2)
    xdg = XdG(gate_seed=1)
    for k in range(len(tasks)):
        xdg.before_task(model, tasks[:k + 1])
    model.eval()
    for task in tasks:
        model.use_head(task.head)
        got = xdg.predict(model, task.x_test, task)
        torch.testing.assert_close(got, by_hand(model, task.x_test, xdg.gates[xdg.context(task)]))


def test_weights_into_units_a_task_switches_off_do_not_move_while_it_trains():
    """Also when another task was evaluated between two epochs: training uses the trained task's gate."""
    tasks, model = random_tasks(2), small_mlp(heads=2)
    xdg, after = XdG(gate_seed=2), {}
    fit(model, tasks, xdg, epochs=2, batch_size=20, lr=1e-2, progress=False,
        on_task=lambda m, s, k: after.update({k: {n: p.detach().clone() for n, p in m.named_parameters()}}),
        on_epoch=lambda history: evaluate(model, tasks[:1], predict=xdg.predict))  # a look at task 1 between epochs
    off = xdg.gates[1][0] == 0  # fc1's units task 2 switched off: no gradient reaches their rows
    assert torch.equal(after[1]["fc1.weight"][off], after[0]["fc1.weight"][off])
    assert torch.equal(after[1]["fc1.bias"][off], after[0]["fc1.bias"][off])
    assert not torch.equal(after[1]["fc1.weight"][~off], after[0]["fc1.weight"][~off])


def test_task_inference_picks_the_gate_of_lowest_entropy_and_counts_its_hits():
    tasks, model = random_tasks(3, heads=False), small_mlp()
    xdg = XdG(gate_seed=4, infer_task=True)
    for k in range(2):  # two trained tasks: inference chooses between their gates only
        xdg.before_task(model, tasks[:k + 1])
    model.eval()
    task = tasks[1]
    got = xdg.predict(model, task.x_test, task)
    every = [by_hand(model, task.x_test, xdg.gates[k]) for k in (0, 1)]
    expected, hits = [], 0
    for i in range(len(task.x_test)):
        entropies = [-(F.softmax(s[i], 0) * F.log_softmax(s[i], 0)).sum() for s in every]
        best = min(range(2), key=lambda j: entropies[j])
        expected.append(every[best][i])
        hits += best == 1
    torch.testing.assert_close(got, torch.stack(expected))
    right = xdg.inference_accuracy(model, tasks)
    assert set(right) == {"t0", "t1"} and right["t1"] == 100.0 * hits / len(task.x_test)  # t2: never trained


def test_a_run_that_infers_the_task_records_how_often_it_was_right_and_the_summary_says_so(tmp_path):
    from cl_course.report import results_dict, summary_markdown
    tasks, model = random_tasks(2, heads=False), small_mlp()
    history = fit(model, tasks, XdG(gate_seed=6, infer_task=True), epochs=1, batch_size=20, progress=False)
    assert set(history.task_inference) == {"t0", "t1"} and all(0 <= v <= 100 for v in history.task_inference.values())
    told = fit(small_mlp(), tasks, XdG(gate_seed=6), epochs=1, batch_size=20, progress=False)
    assert told.task_inference is None
    config = RunConfig(methods=("xdg",), scenario="class", task_inference=True, benchmark="split-mnist")
    data = results_dict(config, {"xdg": history}, "cpu", 80)
    right = history.task_inference
    assert (f"xdg {right['t0']:.1f}, {right['t1']:.1f} (mean {(right['t0'] + right['t1']) / 2:.1f})"
            in summary_markdown(data))


def test_xdg_with_si_gates_and_regularises():
    config = RunConfig(methods=("xdg-si",), protocol="paper", lambdas={"xdg-si": 10.0}, scenario="task")
    strategy = make_strategy("xdg-si", config)
    assert isinstance(strategy, XdGSI) and strategy.lam == 10.0
    tasks, model = random_tasks(2), small_mlp(heads=2)
    history = fit(model, tasks, strategy, epochs=1, batch_size=20, progress=False)
    assert len(strategy.gates) == 2 and strategy.importance is not None
    assert len(history.accuracy_matrix) == 2


@pytest.mark.parametrize("settings, message", [
    (dict(methods=("xdg",), benchmark="split-mnist", scenario="class"),
     "xdg chooses its context by the task, which class-IL does not give at test time"),
    (dict(methods=("xdg",)), "which domain-IL does not give"),  # Permuted MNIST's own scenario
    (dict(methods=("xdg-si",), scenario="task"), "xdg-si takes a lambda and has no default"),
])
def test_without_the_task_or_a_lambda_it_is_one_line(settings, message):
    with pytest.raises(ValueError, match=message):
        RunConfig(**settings).check()
    RunConfig(**settings | dict(task_inference=True, lambdas={"xdg-si": 1.0})).check()

