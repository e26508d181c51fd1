import math
import random
import time

import pytest
import torch

from cl_course.metrics import (average_accuracy, backward_transfer, forgetting, forward_transfer,
                               importance_correlations, intransigence, rank_correlation, summary)

# R[i][j]: task j after training task i (hand-made, 3 tasks)
R = [[90, 12, 8],
     [70, 95, 14],
     [60, 80, 97]]
B = [10, 11, 9]  # the untrained model


def test_average_accuracy_is_hw14s():
    assert average_accuracy(R) == pytest.approx((60 + 80 + 97) / 3)
    assert average_accuracy(R, 0) == 90
    assert average_accuracy(R, 1) == pytest.approx((70 + 95) / 2)


def test_backward_transfer():
    assert backward_transfer(R) == pytest.approx(((60 - 90) + (80 - 95)) / 2)


def test_forward_transfer_against_random_init():
    assert forward_transfer(R, B) == pytest.approx(((12 - 11) + (14 - 9)) / 2)


def test_forgetting_uses_the_best_earlier_accuracy():
    R2 = [[50, 0], [90, 0]]  # task 0 improved, then nothing to forget over a single later task
    assert forgetting(R2) == pytest.approx(50 - 90)  # best before the final task is 50: negative = improved
    assert forgetting(R) == pytest.approx(((90 - 60) + (95 - 80)) / 2)


def test_single_task_and_summary():
    assert backward_transfer([[80]]) == forward_transfer([[80]], [10]) == forgetting([[80]]) == 0.0
    assert set(summary(R, B)) == {"average_accuracy", "backward_transfer", "forward_transfer", "forgetting"}


def test_intransigence_against_the_joint_runs_diagonal():
    joint = [[91, 10, 10],
             [92, 96, 11],
             [93, 95, 99]]
    # (91 - 90) + (96 - 95) + (99 - 97), over all 3 tasks; only the reference's diagonal counts
    assert intransigence(R, joint) == pytest.approx((1 + 1 + 2) / 3)
    assert intransigence(joint, joint) == 0
    assert intransigence([[80]], [[85]]) == 5
    with pytest.raises(ValueError):
        intransigence(R, [[91]])


def brute_force_spearman(a, b):
    """Average ranks by counting (O(n^2)), then Pearson's formula in plain Python."""
    def ranks(x):
        return [1 + sum(y < v for y in x) + (sum(y == v for y in x) - 1) / 2 for v in x]
    ra, rb = ranks(a), ranks(b)
    ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    cov = sum((p - ma) * (q - mb) for p, q in zip(ra, rb, strict=True))
    return cov / math.sqrt(sum((p - ma) ** 2 for p in ra) * sum((q - mb) ** 2 for q in rb))


def test_rank_correlation_hand_worked_with_a_tie():
    # ranks (1, 2.5, 2.5, 4) and (4, 3, 2, 1): deviations (-1.5, 0, 0, 1.5) and (1.5, .5, -.5, -1.5)
    # -> cov -4.5, sums of squares 4.5 and 5 -> rho = -4.5 / sqrt(22.5) = -3 / sqrt(10)
    rho = rank_correlation(torch.tensor([1.0, 2.0, 2.0, 3.0]), torch.tensor([4.0, 3.0, 2.0, 1.0]))
    assert rho == pytest.approx(-3 / math.sqrt(10))
    assert isinstance(rho, float)


def test_rank_correlation_matches_brute_force_on_ties():
    rng = random.Random(0)
    for _ in range(5):
        # many exact zeros and repeated values, as importances of dead units have
        a = [rng.choice([0.0, 0.0, 0.0, 1e-3, 0.5, 2.0, rng.random()]) for _ in range(70)]
        b = [x * rng.choice([1, 1, -1]) + rng.choice([0.0, 0.0, 0.25]) for x in a]
        got = rank_correlation(torch.tensor(a).reshape(7, 10), torch.tensor(b))  # shapes differ, sizes agree
        assert got == pytest.approx(brute_force_spearman(a, b), abs=1e-12)


def test_rank_correlation_perfect_and_reversed_orderings():
    x = torch.randn(1000, generator=torch.Generator().manual_seed(0))
    assert rank_correlation(x, x.exp()) == pytest.approx(1.0)  # monotone transform: same ranks
    assert rank_correlation(x, -x) == pytest.approx(-1.0)
    with pytest.raises(ValueError):
        rank_correlation(x, x[:10])


def test_rank_correlation_is_fast_on_the_mlps_size():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(1_500_000, generator=g).relu()  # half exact zeros
    b = a + 0.1 * torch.randn(1_500_000, generator=g)
    start = time.perf_counter()
    rho = rank_correlation(a, b)
    assert time.perf_counter() - start < 10  # a Python loop over elements would take minutes
    assert 0.5 < rho < 1


def test_importance_correlations_every_pair_over_all_parameters():
    g = torch.Generator().manual_seed(0)
    ewc = {"fc1.weight": torch.rand(3, 4, generator=g), "fc1.bias": torch.zeros(3)}
    mas = {"fc1.weight": ewc["fc1.weight"] ** 2, "fc1.bias": torch.zeros(3)}  # same order as ewc
    si = {"fc1.bias": torch.arange(3.0), "fc1.weight": -ewc["fc1.weight"]}  # keys in another order
    got = importance_correlations({"ewc": ewc, "mas": mas, "si": si})
    assert list(got) == [("ewc", "mas"), ("ewc", "si"), ("mas", "si")]
    assert got[("ewc", "mas")] == pytest.approx(1.0)
    flat = {m: torch.cat([d["fc1.weight"].reshape(-1), d["fc1.bias"]]) for m, d in
            {"ewc": ewc, "mas": mas, "si": si}.items()}
    for (m1, m2), rho in got.items():  # concatenated in ewc's (the first method's) parameter order
        assert rho == pytest.approx(brute_force_spearman(flat[m1].tolist(), flat[m2].tolist()), abs=1e-12)
    assert got[("ewc", "si")] != pytest.approx(-1.0)  # the biases' ranks break the pure reversal
