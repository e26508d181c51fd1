import pytest

from cl_course.metrics import average_accuracy, backward_transfer, forgetting, forward_transfer, summary

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
