"""The memory, ER, A-GEM and GEM against independent computations: counts and uniformity of the per-class
draw, hand-worked and brute-force projections (a grid search, Hildreth's coordinate ascent, the KKT
conditions), a per-sample loop for the memory's gradient, and each strategy's hooks probed inside fit()."""
import copy
import math

import pytest
import torch
import torch.nn.functional as F

from cl_course.data import Task
from cl_course.model import MLP
from cl_course.replay import (AGEM, GEM, ExperienceReplay, Memory, agem_project, gem_project, memory_gradient,
                              random_per_class)
from cl_course.strategies import Replay
from cl_course.train import fit


def synthetic_tasks(n_tasks=3, n_train=30, n_test=10, seed=0, labels=4):
    """Task-IL style tasks: random inputs, labels 0..labels-1, head t (rows differ between tasks)."""
    g = torch.Generator().manual_seed(seed)
    tasks = []
    for t in range(n_tasks):
        x, xt = torch.randn(n_train, 8, generator=g), torch.randn(n_test, 8, generator=g)
        y = torch.arange(n_train) % labels  # every label present, shuffled below
        y = y[torch.randperm(n_train, generator=g)]
        yt = torch.randint(0, labels, (n_test,), generator=g)
        tasks.append(Task(f"t{t}", x, y, xt, yt, head=t))
    return tasks


def small_model(heads=1, dtype=torch.float32):
    torch.manual_seed(0)
    return MLP(out_features=4, heads=heads, hidden=(6, 5), in_features=8).to(dtype)


def row_index(rows, x):
    """Index in `rows` of each row of x (each must be there exactly once)."""
    out = []
    for r in x:
        hits = (rows == r).all(1).nonzero().flatten().tolist()
        assert len(hits) == 1, "a stored sample that is not (exactly once) in the data"
        out.append(hits[0])
    return out


def flat_grad(model):
    return torch.cat([(torch.zeros_like(p) if p.grad is None else p.grad).flatten() for p in model.parameters()])


# ---------------------------------------------------------------- random_per_class

def test_random_per_class_counts_labels_and_distinct_indices():
    labels = torch.tensor([3, 0, 7, 0, 3, 3, 7, 0, 0, 3, 0, 7, 3, 3, 9])  # 0: 5, 3: 6, 7: 3, 9: 1
    available = {0: 5, 3: 6, 7: 3, 9: 1}
    for per_class in (1, 2, 4, 10):
        keep = random_per_class(labels, per_class, torch.Generator().manual_seed(per_class)).tolist()
        assert len(set(keep)) == len(keep) and all(0 <= i < len(labels) for i in keep)
        counts = {}
        for i in keep:
            counts[int(labels[i])] = counts.get(int(labels[i]), 0) + 1
        assert counts == {c: min(per_class, n) for c, n in available.items()}  # every label, that many


def test_random_per_class_is_uniform_within_each_class():
    labels = torch.tensor([1, 0, 2, 1, 0, 1, 2, 1, 0, 1])  # 0: 3 samples, 1: 5, 2: 2
    runs, counts = 1500, [0] * len(labels)
    for seed in range(runs):
        for i in random_per_class(labels, 2, torch.Generator().manual_seed(seed)).tolist():
            counts[i] += 1
    chance = {0: 2 / 3, 1: 2 / 5, 2: 1.0}  # per_class / available
    for i, c in enumerate(labels.tolist()):
        expected = runs * chance[c]
        sd = math.sqrt(runs * chance[c] * (1 - chance[c]))
        assert abs(counts[i] - expected) <= 5 * sd + 1e-9, (i, counts[i], expected)


# ---------------------------------------------------------------- Memory

def test_memory_of_task_returns_each_tasks_samples_with_its_head():
    tasks = synthetic_tasks(2, n_train=21, labels=3)  # 7 per label
    tasks[0].head, tasks[1].head = 5, 2
    memory = Memory(per_class=4, seed=1)
    memory.add(tasks[0], 0)
    assert len(memory) == 12
    memory.add(tasks[1], 1)
    assert len(memory) == 24
    for k, task in enumerate(tasks):
        x, y, head = memory.of_task(k)
        assert len(x) == 12 and head.dtype == torch.long and head.tolist() == [task.head] * 12
        rows = row_index(task.x_train, x)  # each stored sample is one of this task's, at most once
        assert len(set(rows)) == len(rows)
        assert y.tolist() == task.y_train[rows].tolist()
        assert sorted(y.tolist()) == [0] * 4 + [1] * 4 + [2] * 4
    x0, _, _ = memory.of_task(0)
    x1, _, _ = memory.of_task(1)
    assert torch.equal(torch.cat([x0, x1]), memory.x)  # together: everything, nothing else


def test_memory_keeps_fewer_when_a_label_has_fewer_samples():
    x = torch.arange(12.0).reshape(6, 2)
    task = Task("t", x, torch.tensor([0, 0, 0, 0, 1, 0]), x, torch.zeros(6, dtype=torch.long), head=0)
    memory = Memory(per_class=3)
    memory.add(task, 0)
    assert sorted(memory.y.tolist()) == [0, 0, 0, 1]


def test_memory_sample_without_repeats_and_consistent_triples():
    tasks = synthetic_tasks(2, n_train=20, labels=2)
    memory = Memory(per_class=5, seed=0)
    for k, t in enumerate(tasks):
        memory.add(t, k)
    stored = torch.cat([memory.x, memory.y[:, None].double(), memory.head[:, None].double()], 1)
    for n in (1, 7, 19, 20):
        x, y, head = memory.sample(n)
        assert len(x) == len(y) == len(head) == n
        rows = row_index(memory.x, x)
        assert len(set(rows)) == n  # no repeats while n <= len(memory)
        got = torch.cat([x, y[:, None].double(), head[:, None].double()], 1)
        assert torch.equal(got, stored[rows])  # each sample keeps its own label and head
    x, _, _ = memory.sample(20)
    assert sorted(row_index(memory.x, x)) == list(range(20))  # n = size: every stored sample once
    draws = [tuple(row_index(memory.x, memory.sample(5)[0])) for _ in range(5)]
    assert len(set(draws)) > 1  # the draws are random, not the same first five each time


# ---------------------------------------------------------------- A-GEM's projection

@pytest.mark.parametrize("g, ref, expected", [
    ((1.0, -1.0), (0.0, 1.0), (1.0, 0.0)),    # conflict: the component against g_ref is removed
    ((2.0, 0.0), (-1.0, 1.0), (1.0, 1.0)),    # g.r = -2, |r|^2 = 2: g + r
    ((3.0, -4.0), (0.0, 2.0), (3.0, 0.0)),    # the length of g_ref does not matter
    ((1.0, 2.0), (0.0, 1.0), (1.0, 2.0)),     # g.r > 0: unchanged
    ((1.0, 0.0), (0.0, 1.0), (1.0, 0.0)),     # g.r = 0: unchanged
])
def test_agem_projection_hand_worked(g, ref, expected):
    torch.testing.assert_close(agem_project(torch.tensor(g), torch.tensor(ref)), torch.tensor(expected))


def test_agem_projection_leaves_non_conflicting_gradients_alone():
    gen = torch.Generator().manual_seed(0)
    for _ in range(20):
        g, r = torch.randn(7, generator=gen), torch.randn(7, generator=gen)
        if g @ r < 0:
            r = -r
        assert torch.equal(agem_project(g, r), g)


@pytest.mark.parametrize("seed", range(4))
def test_agem_projection_is_the_nearest_vector_found_by_grid_search(seed):
    gen = torch.Generator().manual_seed(seed)
    g, r = torch.rand(2, generator=gen) * 4 - 2, torch.rand(2, generator=gen) * 4 - 2
    if g @ r > 0:
        g = -g  # a conflict
    axis = torch.linspace(-3, 3, 1201)  # step 0.005
    grid = torch.cartesian_prod(axis, axis)
    feasible = grid[grid @ r >= 0]
    nearest = feasible[(feasible - g).norm(dim=1).argmin()]
    projected = agem_project(g, r)
    assert projected @ r >= -1e-6 and projected @ r == pytest.approx(0.0, abs=1e-5)
    assert_nearest_on_grid(g, projected, feasible, nearest)


def assert_nearest_on_grid(g, out, feasible, nearest, step=0.005):
    """No feasible grid point is nearer g than `out`, the nearest one is within a grid step of it in
    distance, and every feasible y has |y - g|^2 >= |out - g|^2 + |y - out|^2 (what makes `out` the
    projection of g onto a convex set; being nearest among the grid points alone pins its position
    down only to about sqrt(step))."""
    d_out, d_grid = (out - g).norm(), (nearest - g).norm()
    assert d_out <= d_grid + 1e-6 and d_grid - d_out <= step * math.sqrt(2)
    slack = (feasible - g).pow(2).sum(1) - d_out ** 2 - (feasible - out).pow(2).sum(1)
    assert slack.min() >= -1e-4


# ---------------------------------------------------------------- GEM's projection

def hildreth(g, G, sweeps=3000):
    """Projection of g onto {x: G x >= 0} by Hildreth's method (coordinate ascent on the dual, one
    constraint at a time), in plain Python floats: independent of gem_project's active-set enumeration."""
    g, G = g.tolist(), G.tolist()
    x, v = list(g), [0.0] * len(G)
    for _ in range(sweeps):
        for k, a in enumerate(G):
            aa = sum(ai * ai for ai in a)
            step = max(-v[k], -sum(ai * xi for ai, xi in zip(a, x, strict=True)) / aa)
            v[k] += step
            x = [xi + step * ai for xi, ai in zip(x, a, strict=True)]
    return torch.tensor(x, dtype=torch.float64), torch.tensor(v, dtype=torch.float64)


def assert_kkt(g, G, out, tol=1e-7):
    """out solves min |x - g|^2 s.t. G x >= 0: feasible, x - g = G^T v with v >= 0, v_k (G x)_k = 0."""
    scale = g.norm() * G.norm(dim=1)
    assert bool((G @ out >= -tol * scale).all())
    v = torch.linalg.lstsq(G.T, (out - g)[:, None]).solution.squeeze(1)
    torch.testing.assert_close(G.T @ v, out - g, rtol=0, atol=tol * g.norm())  # out - g lies in G's row span
    assert bool((v >= -tol).all())
    assert bool(((v * (G @ out)).abs() <= tol * scale * (1 + v.abs())).all())


@pytest.mark.parametrize("g, G, expected", [
    ((1.0, -1.0), ((0.0, 1.0),), (1.0, 0.0)),                     # one constraint: A-GEM's answer
    ((-1.0, -1.0), ((1.0, 0.0), (0.0, 1.0)), (0.0, 0.0)),         # both violated: the cone's apex
    ((1.0, -1.0), ((0.0, 1.0), (1.0, 1.0)), (1.0, 0.0)),          # one violated, the other stays satisfied
    ((-2.0, 1.0), ((0.0, 1.0), (1.0, 1.0)), (-1.5, 1.5)),         # x + y >= 0 active: g + (1/2)(1, 1)
    ((-1.0, -2.0), ((0.0, 1.0), (1.0, 1.0)), (0.0, 0.0)),         # both active: v = (1, 1)
    ((3.0, -1.0), ((0.0, 1.0), (-1.0, 2.0)), (2.0, 1.0)),         # (3, 0) breaks 2y >= x: onto that line, (g.d/d.d) d
    ((3.0, -1.0), ((0.0, 1.0), (-1.0, 1.0)), (1.0, 1.0)),         # both violated, only y >= x active: g + 2(-1, 1)
])
def test_gem_projection_hand_worked(g, G, expected):
    out = gem_project(torch.tensor(g, dtype=torch.float64), torch.tensor(G, dtype=torch.float64))
    torch.testing.assert_close(out, torch.tensor(expected, dtype=torch.float64), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("seed", range(9))
def test_gem_projection_against_hildreth_and_the_kkt_conditions(seed):
    gen = torch.Generator().manual_seed(seed)
    k = 2 + seed % 3  # K = 2, 3, 4 constraints in P = 5 dimensions
    G = torch.randn(k, 5, generator=gen, dtype=torch.float64)
    g = torch.randn(5, generator=gen, dtype=torch.float64)
    while bool((G @ g >= 0).all()):
        g = g - G[0]
    out = gem_project(g, G)
    expected, _ = hildreth(g, G)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-8)
    assert_kkt(g, G, out)


def test_gem_projection_in_float32_is_feasible_and_optimal_to_its_precision():
    gen = torch.Generator().manual_seed(11)
    G, g = torch.randn(4, 5, generator=gen), torch.randn(5, generator=gen) - 1.5 * torch.randn(5, generator=gen)
    G[1] = -0.5 * g + 0.1 * G[1]  # make sure of a conflict
    out = gem_project(g, G)
    expected, _ = hildreth(g.double(), G.double())
    torch.testing.assert_close(out.double(), expected, rtol=0, atol=1e-4)
    assert bool((G.double() @ out.double() >= -1e-5).all())


def test_gem_projection_with_dependent_constraints():
    """A repeated constraint and a positive multiple of another: a singular Gram matrix."""
    gen = torch.Generator().manual_seed(3)
    a, b = torch.randn(5, generator=gen, dtype=torch.float64), torch.randn(5, generator=gen, dtype=torch.float64)
    G = torch.stack([a, b, a, 2 * b])
    g = -a - 0.3 * b + 0.1 * torch.randn(5, generator=gen, dtype=torch.float64)
    assert not bool((G @ g >= 0).all())
    out = gem_project(g, G)
    expected, _ = hildreth(g, G)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-8)
    assert bool((G @ out >= -1e-9).all())


@pytest.mark.parametrize("seed", range(3))
def test_gem_projection_two_constraints_by_grid_search(seed):
    gen = torch.Generator().manual_seed(100 + seed)
    G, g = torch.rand(2, 2, generator=gen) * 4 - 2, torch.rand(2, generator=gen) * 4 - 2
    while bool((G @ g >= 0).all()):
        g = g - G[seed % 2]
    axis = torch.linspace(-4, 4, 1601)  # step 0.005
    grid = torch.cartesian_prod(axis, axis)
    feasible = grid[(grid @ G.T >= 0).all(1)]
    nearest = feasible[(feasible - g).norm(dim=1).argmin()]
    out = gem_project(g, G)
    assert bool((G @ out >= -1e-5).all())
    assert_nearest_on_grid(g, out, feasible, nearest)


def test_gem_projection_leaves_a_gradient_that_raises_no_old_loss_alone():
    gen = torch.Generator().manual_seed(0)
    G = torch.randn(3, 5, generator=gen)
    g = G.sum(0) + 10 * G[0]
    g = g if bool((G @ g >= 0).all()) else torch.linalg.lstsq(G, torch.ones(3, 1)).solution.squeeze(1)
    assert bool((G @ g >= 0).all())
    assert torch.equal(gem_project(g, G), g)


# ---------------------------------------------------------------- memory_gradient

@pytest.mark.parametrize("heads", [1, 2])
def test_memory_gradient_is_the_mean_of_per_sample_gradients_and_leaves_grad_alone(heads):
    model = small_model(heads, torch.float64)
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(6, 8, generator=gen, dtype=torch.float64), torch.tensor([0, 3, 1, 1, 2, 0])
    head = torch.tensor([0, 1, 1, 0, 1, 0]) if heads == 2 else torch.zeros(6, dtype=torch.long)
    params = list(model.parameters())
    for i, p in enumerate(params):  # a sentinel in half of the .grads, None in the others
        p.grad = torch.full_like(p, 7.0 + i) if i % 2 else None
    got = memory_gradient(model, x, y, head)
    for i, p in enumerate(params):
        assert (p.grad is None) if i % 2 == 0 else torch.equal(p.grad, torch.full_like(p, 7.0 + i))
    total = torch.zeros(sum(p.numel() for p in params), dtype=torch.float64)
    for i in range(len(x)):  # one sample at a time, through its own head (an int), with .backward()
        model.zero_grad(set_to_none=True)
        logits = model(x[i:i + 1], int(head[i]))
        (-F.log_softmax(logits, 1)[0, y[i]]).backward()
        total += flat_grad(model)
    torch.testing.assert_close(got, total / len(x), rtol=1e-10, atol=1e-12)
    if heads == 2:  # each head's part only from its own samples
        n_head = model.heads[0].weight.numel() + model.heads[0].bias.numel()
        assert got[-2 * n_head:].abs().sum() > 0 and got[-n_head:].abs().sum() > 0


# ---------------------------------------------------------------- the strategies inside fit()

def assert_memory_holds_finished_tasks(memory, tasks, per_class, finished):
    assert len(memory) == sum(per_class * len(t.y_train.unique()) for t in tasks[:finished])
    assert set(memory.task.tolist()) == set(range(finished))
    for k in range(finished):
        x, y, head = memory.of_task(k)
        task = tasks[k]
        assert torch.bincount(y).tolist() == [per_class] * len(task.y_train.unique())
        assert head.tolist() == [task.head] * len(x)
        rows = row_index(task.x_train, x)
        assert len(set(rows)) == len(rows) and task.y_train[rows].tolist() == y.tolist()


class ProbedER(ExperienceReplay):
    def replay(self, model, x, tasks):
        out = super().replay(model, x, tasks)
        self.calls = getattr(self, "calls", []) + [(len(tasks), x, out, copy.deepcopy(self.memory))]
        return out


def test_er_in_the_loop_replays_batches_of_stored_samples_with_their_heads():
    tasks, er = synthetic_tasks(3), ProbedER(per_class=3, seed=0)  # 12 stored per finished task
    fit(small_model(heads=3), tasks, er, epochs=1, batch_size=10, lr=1e-2, progress=False)
    assert_memory_holds_finished_tasks(er.memory, tasks, 3, finished=2)  # nothing kept after the last task
    heads_seen = {1: set(), 2: set(), 3: set()}
    for seen, x, out, memory in er.calls:
        if seen == 1:
            assert out is None
            continue
        assert isinstance(out, Replay) and len(out.x) == len(out.target) == len(out.head) == len(x)
        assert out.target.dtype == torch.long and out.head.dtype == torch.long
        rows = row_index(memory.x, out.x)
        assert len(set(rows)) == len(rows)
        assert torch.equal(out.target, memory.y[rows]) and torch.equal(out.head, memory.head[rows])
        heads_seen[seen] |= set(out.head.tolist())
    assert heads_seen[2] == {0} and heads_seen[3] == {0, 1}  # task 3 replays both earlier tasks' heads


def conflicting_steps(records):
    return sum(1 for before, _, refs in records if refs is not None and bool((refs @ before < 0).any()))


def loss_gradient(model, x, head, y):
    """The flat gradient of the cross-entropy on (x, y), written out here rather than taken from replay.py."""
    params = list(model.parameters())
    grads = torch.autograd.grad(F.cross_entropy(model(x, head), y), params, allow_unused=True)
    return torch.cat([(torch.zeros_like(p) if g is None else g).flatten() for p, g in zip(params, grads, strict=True)])


class Probed:
    """Records (the gradient before, after, the reference rows computed here) at every step."""

    def adjust_gradients(self, model, tasks):
        before = flat_grad(model).clone()
        references = self.reference_rows(model, tasks) if len(self.memory) else None
        super().adjust_gradients(model, tasks)
        self.records = getattr(self, "records", []) + [(before, flat_grad(model).clone(), references)]


class ProbedAGEM(Probed, AGEM):
    reference_batch = 10_000  # the whole memory: then the reference is the memory's own mean gradient

    def reference_rows(self, model, tasks):
        return loss_gradient(model, self.memory.x, self.memory.head, self.memory.y)[None]


def test_agem_in_the_loop_projects_conflicting_gradients():
    tasks, agem = synthetic_tasks(3), ProbedAGEM(per_class=3, seed=0)
    fit(small_model(heads=3), tasks, agem, epochs=2, batch_size=10, lr=1e-2, progress=False)
    assert_memory_holds_finished_tasks(agem.memory, tasks, 3, finished=2)
    assert conflicting_steps(agem.records) > 0  # else this test would not test the projection
    for before, after, reference in agem.records:
        if reference is None or before @ reference[0] >= 0:
            assert torch.equal(after, before)  # nothing to project: p.grad is left as it was
            continue
        r = reference[0]
        assert after @ r >= -1e-6 * before.norm() * r.norm()
        assert after @ r == pytest.approx(0.0, abs=1e-4 * before.norm().item() * r.norm().item())
        change = after - before  # along r, in the direction that lowers the memory's loss
        along = (change @ r) / (r @ r)
        assert along > 0
        torch.testing.assert_close(change, along * r, rtol=0, atol=1e-5 * before.norm().item())


class ProbedGEM(Probed, GEM):
    def reference_rows(self, model, tasks):
        of_task = [self.memory.head == t.head for t in tasks[:-1]]  # each earlier task's samples, by head
        return torch.stack([loss_gradient(model, self.memory.x[k], self.memory.head[k], self.memory.y[k])
                            for k in of_task])


def test_gem_in_the_loop_projects_onto_every_old_tasks_constraint():
    tasks, gem = synthetic_tasks(3), ProbedGEM(per_class=3, seed=0)
    fit(small_model(heads=3), tasks, gem, epochs=2, batch_size=10, lr=1e-2, progress=False)
    assert_memory_holds_finished_tasks(gem.memory, tasks, 3, finished=2)
    assert conflicting_steps(gem.records) > 0
    assert {len(refs) for _, _, refs in gem.records if refs is not None} == {1, 2}  # one row per earlier task
    for before, after, references in gem.records:
        if references is None or bool((references @ before >= 0).all()):
            assert torch.equal(after, before)
            continue
        assert_kkt(before.double(), references.double(), after.double(), tol=1e-4)
