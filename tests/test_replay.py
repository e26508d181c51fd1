"""The memory, ER, A-GEM and GEM against independent computations: counts and uniformity of the per-class
draw, hand-worked and brute-force projections (a grid search, Hildreth's coordinate ascent, the KKT
conditions), a per-sample loop for the memory's gradient, and each strategy's hooks probed inside fit()."""
import copy
import inspect
import math
import random
import subprocess
import sys
import zipfile

import pytest
import torch
import torch.nn.functional as F

from cl_course.data import Task
from cl_course.model import MLP
from cl_course import replay
from cl_course.replay import (AGEM, GEM, ExperienceReplay, Memory, Reservoir, agem_project, gem_project,
                              memory_gradient, reservoir_slots)
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


# ---------------------------------------------------------------- Memory: the budget and its reduction

def stored_rows(memory, index, label):
    """The stored inputs of one class, in the memory's order, as lists of floats."""
    keep = (memory.task == index) & (memory.y == label)
    return memory.x[keep].tolist()


def test_memory_quota_after_each_task_shares_the_budget_among_the_classes_seen():
    tasks = synthetic_tasks(3, n_train=30, labels=3)  # 10 samples of each label
    memory = Memory(budget=20, seed=0)
    for k, quota in enumerate((6, 3, 2)):  # 20 // 3, 20 // 6, 20 // 9: worked out by hand
        memory.add(tasks[k], k)
        counts = {}
        for t, y in zip(memory.task.tolist(), memory.y.tolist(), strict=True):
            counts[(t, y)] = counts.get((t, y), 0) + 1
        assert counts == {(t, c): quota for t in range(k + 1) for c in range(3)}
        assert len(memory) == 3 * (k + 1) * quota <= 20


def test_memory_class_with_fewer_samples_than_its_quota_keeps_them_all():
    x = torch.arange(12.0).reshape(6, 2)
    task = Task("t", x, torch.tensor([0, 0, 0, 0, 1, 0]), x, torch.zeros(6, dtype=torch.long), head=0)
    memory = Memory(budget=6)  # 3 per class: label 1 has one sample
    memory.add(task, 0)
    assert sorted(memory.y.tolist()) == [0, 0, 0, 1]


def test_memory_reduction_keeps_a_prefix_of_each_class_order_as_a_list_would():
    """A rank of preference written here (largest first input first) and the memory kept as plain lists:
    each new class gets the first m of its order, each old class is cut to its first m."""
    tasks = synthetic_tasks(3, n_train=24, labels=2, seed=3)  # 12 samples of each label
    tasks[1].head, tasks[2].head = 4, 7

    def by_first_input(x, m):
        return torch.argsort(x[:, 0], descending=True)[:m]

    memory, lists = Memory(budget=16, seed=0), {}
    for k, task in enumerate(tasks):
        memory.add(task, k, rank=by_first_input)
        m = 16 // (2 * (k + 1))
        for c in (0, 1):
            rows = [r for r, y in zip(task.x_train.tolist(), task.y_train.tolist(), strict=True) if y == c]
            lists[(k, c)] = sorted(rows, key=lambda r: -r[0])
        lists = {key: rows[:m] for key, rows in lists.items()}
        for (index, c), rows in lists.items():
            assert stored_rows(memory, index, c) == rows
        heads = {(t, h) for t, h in zip(memory.task.tolist(), memory.head.tolist(), strict=True)}
        assert heads == {(t, tasks[t].head) for t in range(k + 1)}


def test_random_memory_shrinks_each_class_to_a_prefix_of_what_it_held():
    tasks = synthetic_tasks(3, n_train=40, labels=2)
    memory, before = Memory(budget=24, seed=5), {}
    for k, task in enumerate(tasks):
        memory.add(task, k)
        for t in range(k):
            for c in (0, 1):
                now = stored_rows(memory, t, c)
                assert len(now) == 24 // (2 * (k + 1)) and now == before[(t, c)][:len(now)]
        before = {(t, c): stored_rows(memory, t, c) for t in range(k + 1) for c in (0, 1)}


def test_random_memory_keeps_a_uniform_subset_of_each_class_before_and_after_shrinking():
    """Budget 4: after task 1 (label 0: 5 samples, label 1: 3) 2 of each, after task 2 one of each; each sample
    is stored with probability quota / its class's size, 6 sigma bounds over 3,000 seeds."""
    first = Task("a", torch.arange(8.0)[:, None], torch.tensor([0, 1, 0, 0, 1, 0, 1, 0]),
                 torch.zeros(1, 1), torch.zeros(1, dtype=torch.long))
    second = Task("b", torch.arange(100.0, 104.0)[:, None], torch.tensor([0, 1, 0, 1]),
                  torch.zeros(1, 1), torch.zeros(1, dtype=torch.long))
    runs, after_first, after_second = 3000, [0] * 8, [0] * 8
    for seed in range(runs):
        memory = Memory(budget=4, seed=seed)
        memory.add(first, 0)
        for v in memory.x[:, 0].tolist():
            after_first[int(v)] += 1
        memory.add(second, 1)
        for v in memory.of_task(0)[0][:, 0].tolist():
            after_second[int(v)] += 1
    size = {0: 5, 1: 3}
    for counts, quota in ((after_first, 2), (after_second, 1)):
        for i, c in enumerate(first.y_train.tolist()):
            p = quota / size[c]
            assert abs(counts[i] - runs * p) <= 6 * math.sqrt(runs * p * (1 - p)), (i, counts[i], runs * p)


def test_memory_refuses_a_budget_below_one_sample_per_class():
    tasks = synthetic_tasks(2, labels=4)
    memory = Memory(budget=6)
    memory.add(tasks[0], 0)
    with pytest.raises(ValueError, match="a memory budget of 6 cannot keep one sample of each of the 8 classes seen"):
        memory.add(tasks[1], 1)


def test_memory_of_task_returns_each_tasks_samples_with_its_head():
    tasks = synthetic_tasks(2, n_train=21, labels=3)  # 7 per label
    tasks[0].head, tasks[1].head = 5, 2
    memory = Memory(budget=24, seed=1)
    memory.add(tasks[0], 0)
    assert len(memory) == 21  # a quota of 8 per class, but 7 samples of each
    memory.add(tasks[1], 1)
    assert len(memory) == 24  # 4 per class
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


def test_memory_sample_without_repeats_and_consistent_triples():
    tasks = synthetic_tasks(2, n_train=20, labels=2)
    memory = Memory(budget=20, seed=0)
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


# ---------------------------------------------------------------- reservoir sampling

def off_by_one_slots(seen, n, budget, generator):
    """Chaudhry et al.'s draw: j uniform in 0..s-1 (a wrong variant the tests must reject)."""
    rng = random.Random(generator.initial_seed() * 1000 + seen)
    return torch.tensor([s if s < budget else (j if (j := rng.randrange(s)) < budget else -1)
                         for s in range(seen, seen + n)])


def always_replace_slots(seen, n, budget, generator):
    """Every item past the budget replaces a random slot (a wrong variant the tests must reject)."""
    rng = random.Random(generator.initial_seed() * 1000 + seen)
    return torch.tensor([s if s < budget else rng.randrange(budget) for s in range(seen, seen + n)])


def kept_items(slots_of, calls, budget, seed):
    """Which stream items a memory written by `slots_of` holds at the end, the writes applied one item at a
    time in a plain loop (a later item overwrites an earlier one)."""
    generator, memory, seen = torch.Generator().manual_seed(seed), [None] * budget, 0
    for n in calls:
        slots = slots_of(seen, n, budget, generator)
        assert slots.dtype == torch.long and slots.shape == (n,)
        for i, slot in enumerate(slots.tolist()):
            assert -1 <= slot < budget
            if slot >= 0:
                memory[slot] = seen + i
        seen += n
    return memory


def largest_deviation(slots_of, calls=(4, 5, 3), budget=5, runs=10_000):
    """The largest |count - expected| / sd over the stream's items of how often each ends in the memory;
    algorithm R keeps every item with probability budget / items."""
    n = sum(calls)
    counts = [0] * n
    for seed in range(runs):
        for item in kept_items(slots_of, calls, budget, seed):
            counts[item] += 1
    p = budget / n
    return max(abs(c - runs * p) / math.sqrt(runs * p * (1 - p)) for c in counts)


def test_reservoir_slots_fill_the_memory_in_order_first():
    assert reservoir_slots(0, 7, 10).tolist() == list(range(7))
    assert reservoir_slots(3, 5, 10).tolist() == [3, 4, 5, 6, 7]  # the stream goes on after `seen`
    crossing = reservoir_slots(8, 500, 10, torch.Generator().manual_seed(0))
    assert crossing.dtype == torch.long and crossing.shape == (500,) and crossing[:2].tolist() == [8, 9]
    assert set(crossing[2:].tolist()) <= set(range(-1, 10))


def test_reservoir_slots_keep_each_item_with_the_right_probability():
    """Late items are kept with probability budget / (s + 1) and drop out when overwritten: over a stream of
    1,000,000 items, the share of kept items among the last 100,000 is about budget / s."""
    slots = reservoir_slots(900_000, 100_000, 1000, torch.Generator().manual_seed(1))
    kept = (slots >= 0).sum().item()
    expected = sum(1000 / (s + 1) for s in range(900_000, 1_000_000))  # 105.4
    assert abs(kept - expected) <= 6 * math.sqrt(expected)
    assert ((slots >= -1) & (slots < 1000)).all()


def test_reservoir_slots_store_every_stream_item_with_probability_budget_over_items():
    """The memory after a stream of 12 items in three calls (4, 5 and 3: within a call items share slots, and
    a later one wins), budget 5: every item is there with probability 5/12, over 10,000 seeds within 6 sigma.
    The same test rejects the off-by-one draw (0..s-1) and a reservoir that always replaces."""
    assert largest_deviation(reservoir_slots) < 6
    assert largest_deviation(off_by_one_slots) > 6
    assert largest_deviation(always_replace_slots) > 6


def test_reservoir_holds_what_a_loop_over_the_stream_would_with_the_last_write_winning():
    gen = torch.Generator().manual_seed(0)
    batches = [(torch.randn(n, 3, generator=gen), torch.randint(0, 4, (n,), generator=gen)) for n in (6, 5, 9, 7)]
    reservoir = Reservoir(budget=8, seed=4)
    for k, (x, y) in enumerate(batches):
        reservoir.observe(x, y, head=10 + k, index=k)
    items = [(row, int(label), 10 + k, k) for k, (x, y) in enumerate(batches)
             for row, label in zip(x.tolist(), y.tolist(), strict=True)]
    expected = [items[i] for i in kept_items(reservoir_slots, [len(x) for x, _ in batches], 8, seed=4)]
    assert len(reservoir) == 8
    got = list(zip(reservoir.x.tolist(), reservoir.y.tolist(), reservoir.head.tolist(), reservoir.task.tolist(),
                   strict=True))
    assert got == expected


def test_reservoir_resolves_slots_written_twice_in_one_batch(monkeypatch):
    reservoir = Reservoir(budget=4, seed=0)
    reservoir.observe(torch.arange(4.0)[:, None], torch.zeros(4, dtype=torch.long), 0, 0)
    monkeypatch.setattr(replay, "reservoir_slots", lambda seen, n, budget, generator: torch.tensor([2, -1, 2, 0, 2]))
    reservoir.observe(torch.arange(10.0, 15.0)[:, None], torch.ones(5, dtype=torch.long), 1, 1)
    assert reservoir.x[:, 0].tolist() == [13.0, 1.0, 14.0, 3.0]  # slot 2: items 0, 2 and 4 of the batch, 4 last
    assert reservoir.y.tolist() == [1, 0, 1, 0] and reservoir.task.tolist() == [1, 0, 1, 0]
    assert reservoir.seen == 9 and len(reservoir) == 4


def test_reservoir_while_filling_holds_only_what_it_saw():
    reservoir = Reservoir(budget=10, seed=0)
    reservoir.observe(torch.arange(3.0)[:, None], torch.tensor([0, 1, 2]), 0, 0)
    assert len(reservoir) == 3 and reservoir.x[:, 0].tolist() == [0.0, 1.0, 2.0]
    assert len(reservoir.sample(128)[0]) == 3


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
    tasks, er = synthetic_tasks(3), ProbedER(budget=24, seed=0)  # 6 per class after task 1, 3 after 2, 2 after 3
    fit(small_model(heads=3), tasks, er, epochs=1, batch_size=10, lr=1e-2, progress=False)
    assert_memory_holds_finished_tasks(er.memory, tasks, 2, finished=3)  # after_task follows the last task too
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


class HerdingER(ExperienceReplay):
    def after_task(self, model, tasks):
        self.copies = getattr(self, "copies", []) + [copy.deepcopy(model)]
        super().after_task(model, tasks)


def test_er_with_herding_stores_herdings_order_and_old_classes_keep_its_prefix():
    """Budget 12: 6 per class after task 1, 3 after task 2, 2 after task 3. Each class holds the first 2 of
    herding's order on the features of the model at its own task's end (a greedy loop written in test_icarl),
    not re-herded."""
    from test_icarl import brute_force_herding, features_by_hand
    tasks = synthetic_tasks(3, n_train=30, labels=2)
    er = HerdingER(budget=12, seed=0, selection="herding")
    fit(small_model(heads=3), tasks, er, epochs=1, batch_size=10, lr=1e-2, progress=False)
    re_herded = []
    for k in (0, 1, 2):
        for c in (0, 1):
            x = tasks[k].x_train[tasks[k].y_train == c]
            order = brute_force_herding(features_by_hand(er.copies[k], x).detach(), 6)
            assert stored_rows(er.memory, k, c) == x[order[:2]].tolist()
            if k == 0:
                re_herded.append(brute_force_herding(features_by_hand(er.copies[1], x).detach(), 3) != order[:3])
    assert any(re_herded)  # herding task 1's classes again at task 2's end would choose differently


class ReservoirER(ExperienceReplay):
    def loss(self, model, x, y, logits, tasks):
        self.stream = getattr(self, "stream", []) + [(x.clone(), y.clone(), len(tasks) - 1)]
        return super().loss(model, x, y, logits, tasks)

    def replay(self, model, x, tasks):
        out = super().replay(model, x, tasks)
        self.calls = getattr(self, "calls", []) + [(len(tasks), self.memory.seen, copy.deepcopy(self.memory), out)]
        return out


def test_er_with_a_reservoir_sees_every_batch_and_replays_only_earlier_ones(monkeypatch):
    drawn = []
    real = replay.reservoir_slots
    monkeypatch.setattr(replay, "reservoir_slots", lambda *args: drawn.append(real(*args)) or drawn[-1])
    tasks = synthetic_tasks(3)
    tasks[1].head, tasks[2].head = 2, 1
    er = ReservoirER(budget=16, seed=2, selection="reservoir")
    fit(small_model(heads=3), tasks, er, epochs=2, batch_size=10, lr=1e-2, progress=False)
    sizes = [len(x) for x, _, _ in er.stream]
    assert er.memory.seen == sum(sizes) == 3 * 2 * 30  # every batch of every task, the last one's too
    for b, (seen_tasks, seen, memory, out) in enumerate(er.calls):
        assert seen == sum(sizes[:b])  # the batch being trained on is written after its step
        if seen_tasks == 1:
            assert out is None  # its weight would be 0 in task 1
            continue
        assert len(out.x) == min(len(er.stream[b][0]), len(memory))
        stored = list(zip(memory.x.tolist(), memory.y.tolist(), memory.head.tolist(), strict=True))
        for replayed in zip(out.x.tolist(), out.target.tolist(), out.head.tolist(), strict=True):
            stored.remove(replayed)  # each a stored sample, none drawn twice (a stored image may be there twice)
    memory = [None] * 16  # the stream's writes one item at a time, a later one winning
    items = [(row, label, tasks[t].head, t) for x, y, t in er.stream
             for row, label in zip(x.tolist(), y.tolist(), strict=True)]
    start = 0
    for slots in drawn:
        for i, slot in enumerate(slots.tolist()):
            if slot >= 0:
                memory[slot] = items[start + i]
        start += len(slots)
    assert start == len(items)
    assert memory == list(zip(er.memory.x.tolist(), er.memory.y.tolist(), er.memory.head.tolist(),
                              er.memory.task.tolist(), strict=True))


def test_remembering_refuses_an_unknown_selection():
    with pytest.raises(ValueError, match="unknown memory selection 'fifo'; choose random, herding, reservoir"):
        ExperienceReplay(selection="fifo")


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
    tasks, agem = synthetic_tasks(3), ProbedAGEM(budget=24, seed=0)
    fit(small_model(heads=3), tasks, agem, epochs=2, batch_size=10, lr=1e-2, progress=False)
    assert_memory_holds_finished_tasks(agem.memory, tasks, 2, finished=3)
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
    tasks, gem = synthetic_tasks(3), ProbedGEM(budget=24, seed=0)
    fit(small_model(heads=3), tasks, gem, epochs=2, batch_size=10, lr=1e-2, progress=False)
    assert_memory_holds_finished_tasks(gem.memory, tasks, 2, finished=3)
    assert conflicting_steps(gem.records) > 0
    assert {len(refs) for _, _, refs in gem.records if refs is not None} == {1, 2}  # one row per earlier task
    for before, after, references in gem.records:
        if references is None or bool((references @ before >= 0).all()):
            assert torch.equal(after, before)
            continue
        assert_kkt(before.double(), references.double(), after.double(), tol=1e-4)


class ReservoirGEM(GEM):
    def adjust_gradients(self, model, tasks):
        held = sorted(set(self.memory.task.tolist()) & set(range(len(tasks) - 1))) if len(self.memory) else []
        before = len(self.projections)
        super().adjust_gradients(model, tasks)
        self.records.append((len(tasks), held, self.projections[before:]))


def test_gem_with_a_small_reservoir_projects_on_the_earlier_tasks_it_holds(monkeypatch):
    gem = ReservoirGEM(budget=1, seed=0, selection="reservoir")  # holds one old task at most
    gem.records, gem.projections, real = [], [], replay.gem_project
    monkeypatch.setattr(replay, "gem_project", lambda g, G: gem.projections.append(len(G)) or real(g, G))
    model = small_model(heads=3)
    fit(model, synthetic_tasks(3), gem, epochs=2, batch_size=10, lr=1e-2, progress=False)
    for seen, held, projections in gem.records:
        assert projections == ([len(held)] if seen > 1 and held else [])  # one row per old task it holds
    assert any(seen == 3 and len(held) < 2 for seen, held, _ in gem.records)  # a task missing from the memory
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_the_student_wheel_stubs_gem_and_holds_none_of_its_lines(tmp_path):
    """GEM's projection with one row is A-GEM's, a student blank: the student edition raises in both, and no
    line of their solution regions is anywhere in its wheel (the release's leak check looks for them too)."""
    from grader import release
    lines = release.solution_lines(inspect.getsource(gem_project)) | \
        release.solution_lines(inspect.getsource(GEM.adjust_gradients))
    assert "gram, b = G @ G.T, G @ gradient" in lines and len(lines) >= 15
    assert lines <= release.secrets_of()
    wheel = release.build_wheel(tmp_path / "build", tmp_path / "out", student=True)
    with zipfile.ZipFile(wheel) as z:
        texts = {name: z.read(name).decode(errors="replace") for name in z.namelist()}
    assert not [(name, line) for name, text in texts.items() for line in lines if line in text]
    code = ("import torch\nfrom cl_course import EDITION\nfrom cl_course.data import Task\n"
            "from cl_course.model import MLP\nfrom cl_course.replay import GEM, gem_project\n"
            "gem, model, task = GEM(), MLP(2, hidden=(3,), in_features=4), Task('t', *[torch.zeros(2, 4), "
            "torch.zeros(2, dtype=torch.long)] * 2)\n"
            "gem.memory.x, gem.memory.y = torch.zeros(2, 4), torch.zeros(2, dtype=torch.long)\n"
            "gem.memory.head, gem.memory.task = torch.zeros(2, dtype=torch.long), torch.zeros(2, dtype=torch.long)\n"
            "for call in (lambda: gem.adjust_gradients(model, [task, task]), "
            "lambda: gem_project(torch.ones(2), torch.ones(1, 2))):\n"
            "    try:\n        call()\n        print('ran')\n"
            "    except NotImplementedError:\n        print('NotImplementedError')\nprint(EDITION)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                          env={"PYTHONPATH": str(wheel), "PATH": "/usr/bin:/bin"})
    assert done.stdout.split() == ["NotImplementedError", "NotImplementedError", "student"], done.stderr[-2000:]


def test_a_notebooks_reservoir_slots_fills_the_reservoir_of_er_agem_and_gem():
    from cl_course.config import RunConfig
    from cl_course.methods import make_strategy
    for method in ("er", "agem", "gem"):
        calls = []
        answer = lambda *args, calls=calls: calls.append(args[:3]) or reservoir_slots(*args)  # noqa: E731
        strategy = make_strategy(method, RunConfig(memory_budget=8, memory_selection="reservoir"),
                                 {"reservoir_slots": answer})
        fit(small_model(heads=3), synthetic_tasks(2), strategy, epochs=1, batch_size=10, lr=1e-2, progress=False)
        assert calls == [(seen, 10, 8) for seen in range(0, 60, 10)]  # (seen, n, budget) of every batch
        assert make_strategy(method, RunConfig(), {"reservoir_slots": answer}).selection == "random"
