"""The replay and distillation families against independent computations: LwF's distillation loss, the
memory's selection, A-GEM's and GEM's projections (hand-worked and brute force), the VAE's loss, herding,
iCaRL's loss and nearest-mean classifier; and each strategy's hooks in the loop."""
import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from cl_course.config import RunConfig
from cl_course.data import Task
from cl_course.generative import VAE, GenerativeReplay, vae_loss
from cl_course.icarl import ICaRL, class_mean, herding_selection, nearest_mean_scores
from cl_course.methods import make_strategy
from cl_course.model import MLP
from cl_course.replay import Memory, agem_project, gem_project, random_per_class
from cl_course.strategies import LwF, Replay, distillation_loss, outputs_of_old_heads
from cl_course.train import fit


def class_tasks(n_tasks=2, n_train=40, n_test=20, seed=0, dim=8):
    """Class-IL tasks of two classes each (labels 2t, 2t + 1), easy to tell apart."""
    g = torch.Generator().manual_seed(seed)
    tasks = []
    for t in range(n_tasks):
        y, yt = (torch.randint(0, 2, (n,), generator=g) + 2 * t for n in (n_train, n_test))
        x, xt = (torch.randn(len(v), dim, generator=g) + 3 * F.one_hot(v, dim).float() for v in (y, yt))
        tasks.append(Task(f"t{t}", x, y, xt, yt, head=0, classes=(2 * t, 2 * t + 1)))
    return tasks


def model(out=4, heads=1):
    torch.manual_seed(0)
    return MLP(out_features=out, heads=heads, hidden=(6, 5), in_features=8)


# ---------------------------------------------------------------- distillation (LwF, DGR+distill)

def test_distillation_loss_against_its_formula():
    s, t, T = torch.tensor([[1.0, 2.0, 0.5]]), torch.tensor([[0.0, 1.0, 3.0]]), 2.0
    p = [math.exp(v / T) for v in (0.0, 1.0, 3.0)]
    q = [math.exp(v / T) for v in (1.0, 2.0, 0.5)]
    expected = -T ** 2 * sum(pi / sum(p) * math.log(qi / sum(q)) for pi, qi in zip(p, q, strict=True))
    assert distillation_loss(s, t, T).item() == pytest.approx(expected, rel=1e-6)


def test_old_heads_outputs_shared_head_once_and_task_il_per_earlier_head():
    x = torch.randn(3, 8)
    shared, tasks = model(), class_tasks(3)
    xs, head, logits = outputs_of_old_heads(shared, x, tasks)
    assert torch.equal(xs, x) and torch.equal(logits, shared(x))
    multi = model(heads=3)
    tasks = [Task(f"t{k}", x, None, x, None, head=k) for k in range(3)]
    xs, head, logits = outputs_of_old_heads(multi, x, tasks)
    assert head.tolist() == [0, 0, 0, 1, 1, 1] and torch.equal(xs, torch.cat([x, x]))
    for k in (0, 1):
        torch.testing.assert_close(logits[head == k], multi.heads[k](multi.features(x)))


def test_lwf_replays_the_current_inputs_with_the_previous_models_logits():
    tasks, lwf, net = class_tasks(2), LwF(temperature=2.0), model()
    assert lwf.replay(net, tasks[0].x_train, tasks[:1]) is None  # nothing to distil during the first task
    fit(net, tasks[:1], lwf, epochs=1, batch_size=20, progress=False)
    lwf.after_task(net, tasks[:1])
    with torch.no_grad():
        net.fc1.weight.add_(1.0)  # the model moves on; the frozen copy must not
    x = tasks[1].x_train[:5]
    replay = lwf.replay(net, x, tasks)
    assert replay.temperature == 2.0 and torch.equal(replay.x, x) and not lwf.previous.fc1.weight.requires_grad
    assert not torch.allclose(replay.target, net(x))
    torch.testing.assert_close(replay.loss(net), distillation_loss(net(x), replay.target, 2.0))


# ---------------------------------------------------------------- the memory (ER, A-GEM, GEM)

def test_random_per_class_keeps_that_many_distinct_samples_of_every_label():
    labels = torch.tensor([0] * 10 + [1] * 3 + [2] * 7)
    keep = random_per_class(labels, 5, torch.Generator().manual_seed(0))
    assert len(set(keep.tolist())) == len(keep)
    assert torch.bincount(labels[keep]).tolist() == [5, 3, 5]


def test_random_per_class_is_uniform_within_a_class():
    labels, counts = torch.zeros(10, dtype=torch.long), torch.zeros(10)
    g = torch.Generator().manual_seed(0)
    for _ in range(2000):
        counts[random_per_class(labels, 3, g)] += 1
    # each sample kept with probability 3/10: 600 expected per sample, sd about 20
    assert (counts - 600).abs().max() < 100


def test_memory_keeps_each_task_with_its_head_and_samples_without_repeats():
    memory, tasks = Memory(per_class=4, seed=0), class_tasks(2)
    tasks[1].head = 1
    for k, t in enumerate(tasks):
        memory.add(t, k)
    assert len(memory) == 16
    for k, t in enumerate(tasks):
        x, y, head = memory.of_task(k)
        assert torch.bincount(y - 2 * k).tolist() == [4, 4] and set(head.tolist()) == {t.head}
        assert all((t.x_train == row).all(1).any() for row in x)  # stored samples are the task's own
    x, _, _ = memory.sample(16)
    assert len(torch.unique(x, dim=0)) == 16


def test_agem_projection_hand_worked():
    g, ref = torch.tensor([1.0, -1.0]), torch.tensor([0.0, 1.0])
    torch.testing.assert_close(agem_project(g, ref), torch.tensor([1.0, 0.0]))
    torch.testing.assert_close(agem_project(torch.tensor([1.0, 2.0]), ref), torch.tensor([1.0, 2.0]))  # no conflict


def test_agem_projection_is_the_closest_vector_not_raising_the_memory_loss():
    """Brute force over a fine 2-D grid: the feasible point nearest g."""
    g, ref = torch.tensor([0.3, -1.2]), torch.tensor([0.8, 0.6])
    axis = torch.linspace(-2, 2, 801)
    grid = torch.cartesian_prod(axis, axis)
    feasible = grid[grid @ ref >= 0]
    nearest = feasible[(feasible - g).norm(dim=1).argmin()]
    projected = agem_project(g, ref)
    assert projected @ ref == pytest.approx(0.0, abs=1e-6)
    assert (projected - nearest).norm() < 0.01


def brute_force_gem(g, G):
    """The primal by enumeration of active sets in closed form, written independently: for each subset,
    project g onto the intersection of those hyperplanes; keep the nearest projection that is feasible."""
    best = g if bool((G @ g >= -1e-9).all()) else None
    for size in range(1, len(G) + 1):
        for active in itertools.combinations(range(len(G)), size):
            A = G[list(active)]
            candidate = g - A.T @ torch.linalg.solve(A @ A.T, A @ g)  # nearest point with A x = 0
            if bool((G @ candidate >= -1e-7).all()) and (best is None or
                                                           (candidate - g).norm() < (best - g).norm() - 1e-12):
                best = candidate
    return best


def test_gem_projection_hand_worked_two_constraints():
    """g = (1, -2); constraints x . (0, 1) >= 0 and x . (1, 1) >= 0: the nearest feasible point is (1, 0)."""
    out = gem_project(torch.tensor([1.0, -2.0]), torch.tensor([[0.0, 1.0], [1.0, 1.0]]))
    torch.testing.assert_close(out, torch.tensor([1.0, 0.0]))


@pytest.mark.parametrize("seed", range(6))
def test_gem_projection_against_brute_force(seed):
    g_ = torch.Generator().manual_seed(seed)
    k = 2 + seed % 3
    G, g = torch.randn(k, 5, generator=g_, dtype=torch.float64), torch.randn(5, generator=g_, dtype=torch.float64)
    g = g - 2 * G[0]  # make sure at least one constraint is violated
    out, expected = gem_project(g, G), brute_force_gem(g, G)
    assert bool((G @ out >= -1e-6).all())
    torch.testing.assert_close(out, expected, rtol=1e-6, atol=1e-8)


def test_er_replays_a_batch_of_stored_samples_with_their_heads():
    tasks = class_tasks(2)
    er = make_strategy("er", RunConfig(buffer_per_class=3))
    fit(model(), tasks, er, epochs=1, batch_size=10, progress=False)
    assert len(er.memory) == 6  # task 1's two classes; nothing is kept after the last task
    replay = er.replay(None, tasks[1].x_train[:5], tasks)
    assert isinstance(replay, Replay) and len(replay.x) == 5 and replay.head.tolist() == [0] * 5
    assert set(replay.target.tolist()) <= {0, 1}  # task 1's labels
    assert all((tasks[0].x_train == row).all(1).any() for row in replay.x)
    assert er.replay(None, tasks[0].x_train[:5], tasks[:1]) is not None  # the memory, not the task count, decides
    assert make_strategy("er", RunConfig()).replay(None, tasks[0].x_train[:5], tasks[:1]) is None  # empty memory


@pytest.mark.parametrize("method", ["agem", "gem"])
def test_gradient_methods_leave_the_memory_loss_not_rising_to_first_order(method):
    tasks, net = class_tasks(2), model()
    strategy = make_strategy(method, RunConfig(buffer_per_class=5))
    fit(net, tasks[:1], strategy, epochs=2, batch_size=10, progress=False)
    strategy.after_task(net, tasks[:1])
    x, y = tasks[1].x_train, tasks[1].y_train
    net.zero_grad(set_to_none=True)
    F.cross_entropy(net(x), y).backward()
    before = torch.cat([p.grad.flatten() for p in net.parameters()])
    mx, my, mh = strategy.memory.of_task(0)
    reference = torch.autograd.grad(F.cross_entropy(net(mx, mh), my), list(net.parameters()))
    reference = torch.cat([r.flatten() for r in reference])
    assert before @ reference < 0  # learning task 2 would raise task 1's loss: the projection must act
    if method == "agem":
        strategy.reference_batch = len(mx)  # all of the memory, so the reference is the one computed here
    strategy.adjust_gradients(net, tasks)
    after = torch.cat([p.grad.flatten() for p in net.parameters()])
    assert after @ reference >= -1e-5 * after.norm() * reference.norm()
    assert not torch.allclose(after, before)


# ---------------------------------------------------------------- generative replay

def test_vae_loss_against_its_formula():
    logits = torch.tensor([[0.5, -1.0, 2.0], [0.0, 1.0, -0.5]])
    pixels = torch.tensor([[1.0, 0.0, 0.7], [0.2, 1.0, 0.0]])
    mu, logvar = torch.tensor([[0.1, -0.3], [0.0, 0.5]]), torch.tensor([[0.2, -0.1], [0.0, 0.3]])
    total = 0.0
    for i in range(2):
        for j in range(3):
            s = 1 / (1 + math.exp(-logits[i, j].item()))
            x = pixels[i, j].item()
            total -= x * math.log(s) + (1 - x) * math.log(1 - s)
        for j in range(2):
            m, lv = mu[i, j].item(), logvar[i, j].item()
            total += 0.5 * (math.exp(lv) + m * m - 1 - lv)  # KL(N(m, e^lv) || N(0, 1))
    assert vae_loss(logits, pixels, mu, logvar).item() == pytest.approx(total / 2, rel=1e-6)


def test_vae_samples_are_normalised_like_the_data():
    torch.manual_seed(0)
    x = VAE(8, hidden=(6, 5), latent=3).sample(7)
    pixels = x * 0.3081 + 0.1307
    assert x.shape == (7, 8) and bool(((pixels >= -1e-6) & (pixels <= 1 + 1e-6)).all())


@pytest.mark.parametrize("temperature", [None, 2.0])
def test_generative_replay_labels_its_samples_and_trains_the_vae(temperature):
    tasks, net = class_tasks(2), model()
    dgr = GenerativeReplay(temperature=temperature)
    fit(net, tasks[:1], dgr, epochs=1, batch_size=10, progress=False)
    trained = {n: p.detach().clone() for n, p in dgr.vae.named_parameters()}
    dgr.after_task(net, tasks[:1])
    dgr.before_task(net, tasks)
    replay = dgr.replay(net, tasks[1].x_train[:6], tasks)
    assert len(replay.x) == 6 and torch.equal(replay.x, dgr.generated)
    if temperature is None:
        assert replay.target.dtype == torch.long
        assert torch.equal(replay.target, dgr.previous(replay.x).argmax(1))
    else:
        assert replay.temperature == 2.0 and torch.equal(replay.target, dgr.previous(replay.x))
    dgr.after_step(net, tasks)
    assert any(not torch.equal(p, trained[n]) for n, p in dgr.vae.named_parameters())
    assert not any(p.requires_grad for p in dgr.previous_vae.parameters())


# ---------------------------------------------------------------- iCaRL

def brute_force_herding(features, m):
    f = [v / v.norm() for v in features]
    mean = sum(f) / len(f)
    chosen, total = [], torch.zeros_like(mean)
    for k in range(1, m + 1):
        best, best_distance = None, None
        for i in range(len(f)):
            if i in chosen:
                continue
            distance = (mean - (total + f[i]) / k).norm().item()
            if best_distance is None or distance < best_distance:
                best, best_distance = i, distance
        chosen.append(best)
        total = total + f[best]
    return chosen


def test_herding_against_a_brute_force_loop():
    features = torch.randn(30, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    chosen = herding_selection(features, 8).tolist()
    assert chosen == brute_force_herding(features, 8)
    normalised = features / features.norm(dim=1, keepdim=True)
    assert chosen[0] == (normalised - normalised.mean(0)).norm(dim=1).argmin().item()
    assert sorted(herding_selection(features[:5], 9).tolist()) == [0, 1, 2, 3, 4]  # m > N: every sample once


def test_nearest_mean_of_exemplars():
    features = torch.tensor([[3.0, 4.0], [0.0, 2.0]])
    mean = class_mean(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    torch.testing.assert_close(mean, torch.tensor([1.0, 1.0]) / math.sqrt(2))
    means = torch.stack([mean, torch.tensor([0.0, 1.0])])
    scores = nearest_mean_scores(features, means)
    expected = -torch.tensor([[math.dist((0.6, 0.8), m) for m in means.tolist()],
                              [math.dist((0.0, 1.0), m) for m in means.tolist()]])
    torch.testing.assert_close(scores, expected)


def test_icarl_loss_against_its_formula():
    tasks, net = class_tasks(2), model()
    icarl = ICaRL(per_class=3)
    icarl.previous = model()
    with torch.no_grad():
        icarl.previous.fc1.weight.mul_(-1)
    x, y = tasks[1].x_train[:4], tasks[1].y_train[:4]
    logits = net(x)
    old = torch.sigmoid(icarl.previous(x))
    total = 0.0
    for i in range(4):
        for c in range(4):  # the seen classes 0-3: distilled for 0, 1; one-hot for 2, 3
            target = old[i, c].item() if c < 2 else float(y[i].item() == c)
            s = torch.sigmoid(logits[i, c]).item()
            total -= target * math.log(s) + (1 - target) * math.log(1 - s)
    assert icarl.loss(net, x, y, logits, tasks).item() == pytest.approx(total / 4, rel=1e-5)


def test_icarl_keeps_exemplars_trains_on_them_and_classifies_by_the_nearest_mean():
    tasks, net = class_tasks(2), model()
    icarl = make_strategy("icarl", RunConfig(buffer_per_class=3))
    fit(net, tasks[:1], icarl, epochs=1, batch_size=10, progress=False)
    icarl.after_task(net, tasks[:1])
    assert sorted(icarl.exemplars) == [0, 1] and all(len(x) == 3 for x in icarl.exemplars.values())
    icarl.before_task(net, tasks)
    x, y, _ = icarl.training_data(tasks)
    assert len(x) == len(tasks[1].x_train) + 6 and torch.bincount(y[-6:]).tolist() == [3, 3]
    scores = icarl.predict(net, tasks[1].x_test)
    means = icarl.class_means(net)
    assert sorted(means) == [0, 1, 2, 3]
    distances = torch.cdist(F.normalize(net.features(tasks[1].x_test), dim=1), torch.stack(list(means.values())))
    assert torch.equal(scores.argmax(1), torch.tensor(list(means))[distances.argmin(1)])
