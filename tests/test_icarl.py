"""iCaRL against independent computations: herding against a greedy loop over candidates in plain Python,
class means and nearest-mean scores written out, the loss against its formula, and the exemplars and
training data probed inside fit() on class-IL tasks."""
import copy
import math

import pytest
import torch

from cl_course.data import Task
from cl_course.icarl import ICaRL, class_mean, herding_selection, nearest_mean_scores
from cl_course.model import MLP
from cl_course.train import fit


def small_model(out_features=6, dtype=torch.float32):
    torch.manual_seed(0)
    return MLP(out_features=out_features, hidden=(6, 5), in_features=8).to(dtype)


def class_tasks(n_tasks=3, n_train=24, n_test=10, seed=0):
    """Class-IL: task t holds the global classes 2t and 2t + 1 (each at least 8 times), one shared head."""
    g = torch.Generator().manual_seed(seed)
    tasks = []
    for t in range(n_tasks):
        y = 2 * t + (torch.arange(n_train) % 2)[torch.randperm(n_train, generator=g)]
        yt = 2 * t + torch.randint(0, 2, (n_test,), generator=g)
        x = torch.randn(n_train, 8, generator=g) + torch.nn.functional.one_hot(y, 8)
        xt = torch.randn(n_test, 8, generator=g) + torch.nn.functional.one_hot(yt, 8)
        tasks.append(Task(f"t{t}", x, y, xt, yt, head=0, classes=(2 * t, 2 * t + 1)))
    return tasks


def features_by_hand(model, x):
    h = x
    for layer in (model.fc1, model.fc2):
        h = (h @ layer.weight.T + layer.bias).clamp(min=0)
    return h


def unit(v):
    n = math.sqrt(sum(a * a for a in v))
    return [a / n for a in v]


def brute_force_herding(features, m):
    """Greedy in plain Python: at step k, the unchosen sample that brings the mean of the k chosen
    normalised features nearest the mean of all of them (ties: the first)."""
    f = [unit(row) for row in features.tolist()]
    d = len(f[0])
    mean = [sum(row[j] for row in f) / len(f) for j in range(d)]
    chosen, total = [], [0.0] * d
    for k in range(1, min(m, len(f)) + 1):
        best, best_distance = None, math.inf
        for i, row in enumerate(f):
            if i in chosen:
                continue
            distance = math.sqrt(sum((mean[j] - (total[j] + row[j]) / k) ** 2 for j in range(d)))
            if distance < best_distance:
                best, best_distance = i, distance
        chosen.append(best)
        total = [t + v for t, v in zip(total, f[best], strict=True)]
    return chosen


# ---------------------------------------------------------------- herding, class means, scores

@pytest.mark.parametrize("seed", range(4))
def test_herding_against_a_greedy_loop(seed):
    gen = torch.Generator().manual_seed(seed)
    features = torch.randn(25, 4, generator=gen, dtype=torch.float64) + (seed % 2) * 2.0  # with a common offset
    for m in (1, 5, 12, 25):
        chosen = herding_selection(features, m).tolist()
        assert chosen == brute_force_herding(features, m)
        assert len(set(chosen)) == len(chosen) == m


def test_herding_first_pick_is_the_sample_nearest_the_mean():
    gen = torch.Generator().manual_seed(5)
    features = torch.rand(30, 3, generator=gen, dtype=torch.float64)
    f = [unit(row) for row in features.tolist()]
    mean = [sum(col) / len(f) for col in zip(*f, strict=True)]
    nearest = min(range(len(f)), key=lambda i: math.dist(f[i], mean))
    assert herding_selection(features, 4)[0].item() == nearest


def test_herding_ignores_the_scale_of_each_feature_vector():
    gen = torch.Generator().manual_seed(2)
    features = torch.randn(12, 3, generator=gen, dtype=torch.float64)
    scaled = features * torch.rand(12, 1, generator=gen, dtype=torch.float64).add(0.1) * 10
    assert herding_selection(scaled, 6).tolist() == herding_selection(features, 6).tolist()


def test_herding_with_m_above_n_returns_every_sample_once():
    features = torch.randn(5, 3, generator=torch.Generator().manual_seed(0))
    chosen = herding_selection(features, 9).tolist()
    assert len(chosen) == 5 and sorted(chosen) == [0, 1, 2, 3, 4]


def test_class_mean_against_a_direct_computation():
    features = [[3.0, 4.0, 0.0], [0.0, 0.0, 2.0], [1.0, 1.0, 1.0]]
    rows = [unit(r) for r in features]
    expected = unit([sum(col) / 3 for col in zip(*rows, strict=True)])
    torch.testing.assert_close(class_mean(torch.tensor(features, dtype=torch.float64)),
                               torch.tensor(expected, dtype=torch.float64))


def test_nearest_mean_scores_against_a_direct_computation():
    gen = torch.Generator().manual_seed(0)
    features = torch.randn(6, 4, generator=gen, dtype=torch.float64)
    means = torch.nn.functional.normalize(torch.randn(3, 4, generator=gen, dtype=torch.float64), dim=1)
    got = nearest_mean_scores(features, means)
    expected = [[-math.dist(unit(f), m) for m in means.tolist()] for f in features.tolist()]
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64), rtol=1e-9, atol=1e-9)


def test_predict_picks_the_nearest_mean_and_rules_out_classes_without_one():
    model, icarl = small_model(out_features=4, dtype=torch.float64), ICaRL(budget=8)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(9, 8, generator=gen, dtype=torch.float64) * 3
    means = {0: torch.randn(5, generator=gen, dtype=torch.float64), 2: torch.randn(5, generator=gen,
                                                                                    dtype=torch.float64)}
    icarl.means = {c: m / m.norm() for c, m in means.items()}
    scores = icarl.predict(model, x, class_tasks(1)[0])
    assert scores.shape == (9, 4)
    assert bool(torch.isneginf(scores[:, [1, 3]]).all()) and bool(torch.isfinite(scores[:, [0, 2]]).all())
    for i, f in enumerate(features_by_hand(model, x).tolist()):
        distance = {c: math.dist(unit(f), m.tolist()) for c, m in icarl.means.items()}
        assert scores[i, 0].item() == pytest.approx(-distance[0]) and scores[i, 2].item() == pytest.approx(-distance[2])
        assert scores[i].argmax().item() == min(distance, key=distance.get)


def test_predict_without_any_class_mean_gives_the_logits():
    model, x = small_model(out_features=4), torch.randn(3, 8)
    assert torch.equal(ICaRL().predict(model, x, class_tasks(1)[0]), model(x))


# ---------------------------------------------------------------- the loss

def bce(logit, target):
    s = 1 / (1 + math.exp(-logit))
    return -(target * math.log(s) + (1 - target) * math.log(1 - s))


def test_loss_of_the_first_task_is_bce_over_its_classes_only():
    tasks, model = class_tasks(2), small_model(dtype=torch.float64)
    x, y = tasks[0].x_train[:5].double(), tasks[0].y_train[:5]
    logits = model(x)
    expected = sum(bce(logits[i, c].item(), float(y[i].item() == c)) for i in range(5) for c in (0, 1)) / 5
    assert ICaRL().loss(model, x, y, logits, tasks[:1]).item() == pytest.approx(expected, rel=1e-10)


def test_loss_distils_old_classes_and_leaves_unseen_ones_out():
    tasks, model = class_tasks(3), small_model(dtype=torch.float64)  # 6 outputs; classes 4, 5 unseen
    icarl = ICaRL()
    icarl.previous = small_model(dtype=torch.float64)
    with torch.no_grad():
        icarl.previous.fc1.weight.mul_(-1.5)
        icarl.previous.fc4.bias.add_(0.7)
    # the current task's samples and exemplars of old classes, as training_data mixes them
    x = torch.cat([tasks[1].x_train[:4], tasks[0].x_train[:3]]).double()
    y = torch.cat([tasks[1].y_train[:4], tasks[0].y_train[:3]])
    logits = model(x)
    previous = features_by_hand(icarl.previous, x) @ icarl.previous.fc4.weight.T + icarl.previous.fc4.bias
    total = 0.0
    for i in range(len(x)):
        for c in (0, 1, 2, 3):  # seen: distilled for the old classes 0, 1, one-hot for the new 2, 3
            target = 1 / (1 + math.exp(-previous[i, c].item())) if c < 2 else float(y[i].item() == c)
            total += bce(logits[i, c].item(), target)
    got = icarl.loss(model, x, y, logits, tasks[:2]).item()
    assert got == pytest.approx(total / len(x), rel=1e-10)


def test_loss_gradient_reaches_only_the_seen_classes_outputs():
    tasks, model = class_tasks(2), small_model()
    x, y = tasks[0].x_train, tasks[0].y_train
    ICaRL().loss(model, x, y, model(x), tasks[:1]).backward()
    assert model.fc4.bias.grad[2:].abs().max() == 0 and model.fc4.bias.grad[:2].abs().min() > 0


# ---------------------------------------------------------------- inside fit()

class ProbedICaRL(ICaRL):
    def training_data(self, tasks):
        out = super().training_data(tasks)
        self.data = getattr(self, "data", []) + [(len(tasks), dict(self.exemplars), out)]
        return out

    def after_task(self, model, tasks):
        self.copies = getattr(self, "copies", []) + [copy.deepcopy(model)]
        super().after_task(model, tasks)


def test_icarl_in_the_loop_keeps_herded_exemplars_within_its_budget_and_trains_on_them():
    """Budget 12: 12 // 2 = 6 exemplars per class after task 1, 12 // 4 = 3 after task 2, 12 // 6 = 2 after
    task 3; the old classes then keep the first 3 (2) of the herding order chosen at their own task's end (not
    herded again later). The classifier is probed while task 3 is trained (on_task), before its exemplars."""
    tasks, icarl = class_tasks(3), ProbedICaRL(budget=12)
    model = small_model()
    last = {}

    def probe(model, strategy, k):
        if k == 2:
            last.update(exemplars=dict(strategy.exemplars), means=strategy.class_means(model))
    fit(model, tasks, icarl, epochs=1, batch_size=8, lr=1e-2, progress=False, on_task=probe)
    assert sorted(last["exemplars"]) == [0, 1, 2, 3]  # tasks 1 and 2's, while task 3 trains
    herded = {}  # class -> the herding order on the features of the model at its own task's end
    for c in range(6):
        task, frozen = tasks[c // 2], icarl.copies[c // 2]
        x = task.x_train[task.y_train == c]
        herded[c] = x[brute_force_herding(features_by_hand(frozen, x).detach(), 6)]
    during_task_2 = icarl.data[1][1]
    assert sorted(during_task_2) == [0, 1]
    for c in (0, 1):
        torch.testing.assert_close(during_task_2[c], herded[c])  # 6 each
    for c, exemplars in last["exemplars"].items():
        torch.testing.assert_close(exemplars, herded[c][:3])
    assert sorted(icarl.exemplars) == list(range(6))  # after the last task too
    for c, exemplars in icarl.exemplars.items():
        torch.testing.assert_close(exemplars, herded[c][:2])
    x = tasks[0].x_train[tasks[0].y_train == 0]
    again = x[brute_force_herding(features_by_hand(icarl.copies[1], x).detach(), 3)]
    assert not torch.equal(again, herded[0][:3])  # herding again would have chosen others: the test can tell
    assert [seen for seen, _, _ in icarl.data] == [1, 2, 3]
    for seen, exemplars, (x, y, head) in icarl.data:
        task = tasks[seen - 1]
        assert head == 0 and sorted(exemplars) == list(range(2 * (seen - 1)))
        stored = [exemplars[c] for c in sorted(exemplars)]
        assert torch.equal(x, torch.cat([task.x_train, *stored]))
        labels = [c for c in sorted(exemplars) for _ in range(len(exemplars[c]))]
        assert y.dtype == torch.long and y.tolist() == task.y_train.tolist() + labels
    # the classifier: means of the exemplars, and of all training data of the current (last) task
    means = last["means"]
    assert sorted(means) == [0, 1, 2, 3, 4, 5]
    for c, mean in means.items():
        source = last["exemplars"][c] if c < 4 else tasks[2].x_train[tasks[2].y_train == c]
        f = [unit(row) for row in features_by_hand(model, source).tolist()]
        expected = unit([sum(col) / len(f) for col in zip(*f, strict=True)])
        torch.testing.assert_close(mean, torch.tensor(expected), rtol=1e-5, atol=1e-6)
    assert not any(p.requires_grad for p in icarl.previous.parameters())
    assert torch.equal(icarl.previous.fc1.weight, icarl.copies[-1].fc1.weight)


def test_icarl_refuses_a_budget_below_one_exemplar_per_class():
    tasks, icarl = class_tasks(3), ICaRL(budget=3)
    with pytest.raises(ValueError, match="a memory budget of 3 cannot keep one sample of each of the 4 classes"):
        fit(small_model(), tasks, icarl, epochs=1, batch_size=8, lr=1e-2, progress=False)
    assert sorted(icarl.exemplars) == [0, 1] and [len(x) for x in icarl.exemplars.values()] == [1, 1]
