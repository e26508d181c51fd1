"""IMM against the formulas: the merge on a hand-worked two-parameter case, the merged network that evaluation
uses against a fresh copy loaded with it, training going on from the task's own network, mode-IMM's Fisher against
fisher_diagonal on the task's data, and L2-transfer's penalty written out."""
import pytest
import torch

from cl_course import RunConfig
from cl_course.imm import IMM, merged
from cl_course.importance import fisher_diagonal
from cl_course.methods import make_strategy
from cl_course.train import evaluate, fit
from helpers import random_tasks, small_mlp


def test_the_merge_of_two_networks_by_hand():
    networks = [{"w": torch.tensor([1.0, 2.0])}, {"w": torch.tensor([3.0, 6.0])}]
    fishers = [{"w": torch.tensor([1.0, 0.0])}, {"w": torch.tensor([3.0, 0.0])}]
    assert merged(networks)["w"].tolist() == [2.0, 4.0]  # mean-IMM: (1 + 3) / 2, (2 + 6) / 2
    # mode-IMM: (1 * 1 + 3 * 3) / (1 + 3) = 2.5; no Fisher on the second: the mean, 4
    torch.testing.assert_close(merged(networks, fishers)["w"], torch.tensor([2.5, 4.0]))


@pytest.mark.parametrize("mode", [False, True])
def test_evaluation_uses_the_merge_and_training_goes_on_from_the_tasks_own_network(mode):
    tasks, model = random_tasks(3, heads=False, train=60, test=30), small_mlp(hidden=(6, 5))
    imm = IMM(mode=mode)
    history = fit(model, tasks, imm, epochs=2, batch_size=20, lr=1e-2, progress=False)
    assert all(torch.equal(p, imm.networks[-1][n]) for n, p in model.named_parameters())  # never the merge
    fresh = small_mlp(hidden=(6, 5))
    fresh.load_state_dict(merged(imm.networks, imm.fishers if mode else None))
    assert history.accuracy_matrix[-1] == evaluate(fresh, tasks)
    assert len(imm.networks) == 3 and len(imm.fishers) == (3 if mode else 0)


def test_mode_imms_fisher_is_the_true_fisher_on_the_tasks_training_data():
    tasks, model = random_tasks(1, heads=False, train=60, test=30), small_mlp(hidden=(6, 5))
    imm = IMM(mode=True, batch_size=25)
    fit(model, tasks, imm, epochs=1, batch_size=20, lr=1e-2, progress=False)
    model.eval()
    expected = fisher_diagonal(model, [(tasks[0].x_train, tasks[0].y_train)], labels="exact")
    for n in expected:
        torch.testing.assert_close(imm.fishers[0][n], expected[n])


def test_l2_transfer_adds_lam_times_the_squared_distance_to_the_last_tasks_network():
    tasks, model = random_tasks(2, heads=False, train=60, test=30), small_mlp(hidden=(6, 5))
    imm = IMM(lam=0.5)
    imm.networks = [{}]  # one task done: the next before_task anchors at the current parameters
    imm.before_task(model, tasks)
    with torch.no_grad():
        model.fc1.weight.add_(0.1)
    x, y = tasks[1].x_train[:5], tasks[1].y_train[:5]
    logits = model(x)
    plain = torch.nn.functional.cross_entropy(logits, y)
    distance = 0.01 * model.fc1.weight.numel()
    torch.testing.assert_close(imm.loss(model, x, y, logits, tasks), plain + 0.5 * distance)


def test_the_registry_runs_it_in_domain_il_only():
    assert isinstance(make_strategy("imm-mode", RunConfig()), IMM) and make_strategy("imm-mode", RunConfig()).mode
    RunConfig(methods=("imm-mean", "imm-mode")).check()  # Permuted MNIST: domain-IL
    with pytest.raises(ValueError, match="imm-mean runs in domain-IL only"):
        RunConfig(methods=("imm-mean",), scenario="task").check()


def test_drop_transfer_sends_the_last_tasks_column_for_a_dropped_unit_and_its_expectation_is_theta():
    tasks, model = random_tasks(2, heads=False, train=60, test=30), small_mlp(hidden=(6, 5))
    imm = IMM(drop=0.4, seed=3)
    imm.networks = [{}]
    imm.before_task(model, tasks)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn(p.shape))  # theta moved away from mu, the last task's network
    mu = imm.previous
    g = torch.Generator().manual_seed(3 + 1)  # the drops, drawn by hand: fc2's 6 inputs, then fc4's (the head's) 5
    drops = {"fc2.weight": torch.rand(6, generator=g) < 0.4, "fc4.weight": torch.rand(5, generator=g) < 0.4}
    got = imm.transferred(model)
    assert set(got) == set(drops)  # fc1's inputs are pixels, not units: never dropped
    for name, dropped in drops.items():
        theta = dict(model.named_parameters())[name].detach()
        for j in range(theta.shape[1]):
            if dropped[j]:
                assert torch.equal(got[name][:, j], mu[name][:, j])
            else:
                torch.testing.assert_close(got[name][:, j], (theta[:, j] - 0.4 * mu[name][:, j]) / 0.6)
        kept = (theta - 0.4 * mu[name]) / 0.6
        torch.testing.assert_close(0.4 * mu[name] + 0.6 * kept, theta)  # E over the drops: theta


def test_drop_transfer_trains_only_the_kept_units_columns_and_leaves_the_first_task_alone():
    tasks, model = random_tasks(2, heads=False, train=60, test=30), small_mlp(hidden=(6, 5))
    plain = fit(small_mlp(hidden=(6, 5)), tasks[:1], IMM(), epochs=1, batch_size=20, progress=False,
                generator=torch.Generator().manual_seed(0))
    dropping = fit(model, tasks[:1], IMM(drop=0.5), epochs=1, batch_size=20, progress=False,
                   generator=torch.Generator().manual_seed(0))
    assert plain.accuracy_matrix == dropping.accuracy_matrix  # task 1 has no mu: no drop
    imm = IMM(drop=0.5, seed=1)
    imm.networks = [{}]
    imm.before_task(model, tasks)
    x, y = tasks[1].x_train[:20], tasks[1].y_train[:20]
    g = torch.Generator().manual_seed(1 + 1)
    dropped = torch.rand(6, generator=g) < 0.5
    model.zero_grad(set_to_none=True)
    imm.loss(model, x, y, model(x), tasks).backward()
    assert dropped.any() and (~dropped).any()
    assert torch.all(model.fc2.weight.grad[:, dropped] == 0)
    assert torch.all(model.fc2.weight.grad[:, ~dropped].abs().sum(0) > 0)
    assert make_strategy("imm-mean", RunConfig(drop_transfer=0.5)).drop == 0.5
