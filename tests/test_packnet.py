"""PackNet against what its masks promise: each task keeps its share of every hidden layer, the largest free
weights, disjoint from the others'; frozen weights never change again; task-IL's backward transfer is zero to
the last bit; and when the capacity runs out a task gets nothing."""
import pytest
import torch

from cl_course import RunConfig
from cl_course.methods import make_strategy
from cl_course.packnet import PackNet
from cl_course.train import evaluate, fit
from helpers import most_confident, random_tasks, small_mlp


def trained(n, share, **kwargs):
    """PackNet on n tasks; (model, packnet, history, the parameters when each task ended, the hidden weights just
    before each task's pruning)."""
    tasks, model, packnet = random_tasks(n), small_mlp(n), PackNet(share=share, lr=1e-2, **kwargs)
    ended, unpruned, prune = [], [], packnet.finish_task

    def finish_task(model, tasks):
        unpruned.append({n: w.detach().clone() for n, w in packnet.weights(model).items()})
        prune(model, tasks)

    packnet.finish_task = finish_task
    history = fit(model, tasks, packnet, epochs=2, batch_size=20, lr=1e-2, progress=False,
                  on_task=lambda m, s, k: ended.append({n: p.detach().clone() for n, p in m.named_parameters()}))
    return model, packnet, history, ended, unpruned


def test_each_task_keeps_its_share_of_the_largest_free_weights_disjoint_from_the_others():
    _, packnet, _, _, unpruned = trained(3, share=0.25, retrain=0)
    for name, owner in packnet.owner.items():
        n = owner.numel()
        assert [int((owner == k).sum()) for k in (1, 2, 3)] == [round(0.25 * n)] * 3  # one owner per weight
        for k in (1, 2, 3):  # task k kept the largest in magnitude of those free when it ended
            free = (owner == 0) | (owner >= k)
            magnitude = torch.where(free, unpruned[k - 1][name].abs(), torch.tensor(-1.0)).flatten()
            assert set(owner.flatten().eq(k).nonzero().flatten().tolist()) == \
                set(magnitude.topk(round(0.25 * n)).indices.tolist())
    assert packnet.capacity_left() == {n: pytest.approx(25.0, abs=1.0) for n in packnet.owner}


def test_frozen_weights_and_biases_never_change_again():
    model, packnet, _, ended, _ = trained(3, share=0.3)
    final = dict(model.named_parameters())
    for name, owner in packnet.owner.items():
        for k in (1, 2, 3):  # as they were when task k ended, its fine-tuning included
            assert torch.equal(final[name][owner == k], ended[k - 1][name][owner == k])
        assert not final[name][owner == 0].any()  # pruned and never taken: zero
    for i in (1, 2):
        assert torch.equal(final[f"fc{i}.bias"], ended[0][f"fc{i}.bias"])  # trained on task 1 only


def test_backward_transfer_in_task_il_is_zero_to_the_last_bit():
    _, _, history, _, _ = trained(4, share=0.25, retrain=20)
    R = history.accuracy_matrix
    for j in range(4):
        assert all(R[i][j] == R[j][j] for i in range(j, 4)), (j, [R[i][j] for i in range(4)])


def test_when_the_capacity_runs_out_a_task_keeps_nothing_and_trains_its_head_only():
    model, packnet, _, ended, _ = trained(3, share=0.5, retrain=0)
    assert all(int((o == 3).sum()) == 0 and int((o == 0).sum()) == 0 for o in packnet.owner.values())
    assert packnet.capacity_left() == {n: 0.0 for n in packnet.owner}
    final = dict(model.named_parameters())
    assert all(torch.equal(final[n], ended[1][n]) for n in packnet.owner)  # task 3 changed no hidden weight
    assert not torch.equal(final["heads.2.weight"], ended[1]["heads.2.weight"])


def test_the_registry_builds_it_with_a_share_per_task_and_refuses_other_scenarios_without_inference():
    packnet = make_strategy("packnet", RunConfig(tasks=4))
    assert isinstance(packnet, PackNet) and packnet.share == 0.25 and not packnet.infer_task
    with pytest.raises(ValueError, match="packnet chooses its context by the task"):
        RunConfig(methods=("packnet",)).check()  # Permuted MNIST's domain-IL
    assert make_strategy("packnet", RunConfig(methods=("packnet",), task_inference=True).check()).infer_task


def test_without_the_task_it_answers_under_the_most_confident_mask_and_leaves_the_weights_as_they_are():
    tasks, model = random_tasks(3), small_mlp(1)  # one shared head, as in domain- and class-IL
    packnet = PackNet(share=0.3, lr=1e-2, infer_task=True)
    history = fit(model, tasks, packnet, epochs=2, batch_size=20, lr=1e-2, progress=False)
    model.eval()
    weights = {n: p.detach().clone() for n, p in model.named_parameters()}
    x = tasks[1].x_test
    with torch.no_grad():
        got = packnet.predict(model, x, tasks[1])
        every = []
        for k in (1, 2, 3):  # task k's answer: the weights tasks 1..k kept, by hand
            h = x
            for i, layer in enumerate(model.hidden, start=1):
                owner = packnet.owner[f"fc{i}.weight"]
                h = torch.relu(h @ (layer.weight * ((owner >= 1) & (owner <= k))).T + layer.bias)
            every.append(model.heads[0](h))
    answers, chosen = most_confident(every)
    torch.testing.assert_close(got, answers)
    assert all(torch.equal(p, weights[n]) for n, p in model.named_parameters())
    assert history.task_inference["t1"] == pytest.approx(100 * chosen.count(1) / len(x))


def test_while_a_task_trains_it_is_evaluated_with_every_weight_it_trains_on():
    tasks, model, packnet, checked = random_tasks(2), small_mlp(2), PackNet(share=0.3, lr=1e-2), []

    def on_epoch(history):
        if len(history.epoch_accuracy) == 3:  # task 2's first epoch: not pruned yet, its weights are all of them
            model.use_head(tasks[1].head)
            checked.append((history.epoch_accuracy[-1][1], evaluate(model, tasks[1:])[0]))

    fit(model, tasks, packnet, epochs=2, batch_size=20, lr=1e-2, progress=False, on_epoch=on_epoch)
    assert len(checked) == 1 and checked[0][0] == checked[0][1]
