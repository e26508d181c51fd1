"""Separate networks against what they promise: the shared MLP's parameters split among the tasks (checked
against a count of every tensor, and against van de Ven et al.'s Split MNIST MLP), each task answered by its own
network written out by hand, earlier networks never changed again, task-IL's backward transfer zero to the last
bit, and task inference among the networks."""
import pytest
import torch

from cl_course import RunConfig
from cl_course.methods import make_strategy
from cl_course.model import MLP
from cl_course.separate import SeparateNetworks, equal_share_width, network_parameters
from cl_course.train import fit
from helpers import random_tasks, small_mlp


def trained(n, **kwargs):
    tasks, model, separate, ended = random_tasks(n), small_mlp(n), SeparateNetworks(tasks=n, **kwargs), []
    history = fit(model, tasks, separate, epochs=2, batch_size=20, lr=1e-2, progress=False,
                  on_task=lambda m, s, k: ended.append({n: p.detach().clone() for n, p in m.named_parameters()}))
    return model, separate, history, ended


def test_the_networks_share_the_shared_mlps_parameters_at_the_widest_width_that_fits():
    # van de Ven & Tolias's Split MNIST MLP in task-IL: 784-400-400 and five 2-way heads
    shared = sum(p.numel() for p in MLP(2, heads=5, hidden=(400, 400)).parameters())
    assert shared == 478_410
    width = equal_share_width(shared, 5, 784, 2, 2)
    assert width == 106  # 5 x 94,766 = 473,830 fits; 5 x 95,767 = 478,835 does not
    assert 5 * network_parameters(784, 106, 2, 2) == 473_830 <= shared < 5 * network_parameters(784, 107, 2, 2)
    assert network_parameters(784, 106, 2, 2) == sum(p.numel() for p in MLP(2, hidden=(106, 106)).parameters())
    with pytest.raises(ValueError, match="use fewer tasks"):
        equal_share_width(100, 5, 784, 2, 2)


def test_the_model_holds_the_networks_alone_at_equal_total_count():
    model, separate, _, _ = trained(3)
    shared = sum(p.numel() for p in small_mlp(3).parameters())
    counted = sum(p.numel() for p in model.parameters())
    assert counted == 3 * separate.parameters_per_network() <= shared
    assert len(model.body.networks) == 3 and not model.hidden and not model.heads


def test_each_task_is_answered_by_its_own_network_written_out():
    model, separate, _, _ = trained(3)
    model.eval()
    for k, task in enumerate(random_tasks(3)):
        net = model.body.networks[k]
        h = task.x_test
        for layer in net.hidden:
            h = torch.relu(h @ layer.weight.T + layer.bias)
        by_hand = h @ net.fc4.weight.T + net.fc4.bias
        torch.testing.assert_close(separate.predict(model, task.x_test, task), by_hand)


def test_earlier_networks_never_change_again_and_backward_transfer_is_zero_to_the_last_bit():
    model, _, history, ended = trained(4)
    final = dict(model.named_parameters())
    for k in range(4):
        mine = [n for n in final if n.startswith(f"body.networks.{k}.")]
        assert mine and all(torch.equal(final[n], ended[k][n]) for n in mine)
        if k < 3:  # and it did train on its task
            assert any(not torch.equal(ended[k][n], ended[k + 1][n]) for n in final if n.startswith(
                f"body.networks.{k + 1}."))
    R = history.accuracy_matrix
    for j in range(4):
        assert all(R[i][j] == R[j][j] for i in range(j, 4)), (j, [R[i][j] for i in range(4)])


def test_task_inference_answers_with_the_most_confident_network():
    tasks, model = random_tasks(3, heads=False), small_mlp(1)
    separate = SeparateNetworks(tasks=3, infer_task=True)
    fit(model, tasks, separate, epochs=2, batch_size=20, lr=1e-2, progress=False)
    model.eval()
    x = tasks[1].x_test
    with torch.no_grad():
        every = torch.stack([net(x) for net in model.body.networks])  # [3, N, 4], each network on its own
        p = every.softmax(-1)
        entropy = [[-(p[k, i] * p[k, i].log()).sum().item() for k in range(3)] for i in range(len(x))]
        chosen = [min(range(3), key=row.__getitem__) for row in entropy]
        expected = torch.stack([every[k, i] for i, k in enumerate(chosen)])
        torch.testing.assert_close(separate.predict(model, x, tasks[1]), expected)
        rate = separate.inference_accuracy(model, tasks)
    assert set(rate) == {"t0", "t1", "t2"} and rate["t1"] == pytest.approx(
        100 * sum(k == 1 for k in chosen) / len(x))


def test_the_registry_builds_it_with_the_runs_tasks_and_refuses_other_scenarios_without_inference():
    separate = make_strategy("separate", RunConfig(tasks=4, seed=3))
    assert isinstance(separate, SeparateNetworks) and separate.tasks == 4 and separate.seed == 3
    with pytest.raises(ValueError, match="separate chooses its context by the task"):
        RunConfig(methods=("separate",)).check()  # Permuted MNIST's domain-IL
    assert make_strategy("separate", RunConfig(methods=("separate",), task_inference=True).check()).infer_task
