"""Continual-learning metrics on an accuracy matrix R, R[i][j] = accuracy on task j after training task i.

Accuracies in %; T tasks; b[j] = accuracy of the randomly initialised model on task j.
"""


def average_accuracy(R, k=None):
    """HW14's metric: mean accuracy over tasks 0..k after training task k (default: the last)."""
    k = len(R) - 1 if k is None else k
    return sum(R[k][:k + 1]) / (k + 1)


def backward_transfer(R):
    """BWT (Lopez-Paz & Ranzato 2017): mean over j < T-1 of R[T-1][j] - R[j][j]; negative = forgetting."""
    T = len(R)
    return sum(R[-1][j] - R[j][j] for j in range(T - 1)) / (T - 1) if T > 1 else 0.0


def forward_transfer(R, b):
    """FWT: mean over j >= 1 of R[j-1][j] - b[j], accuracy on a task before training it, against
    the randomly initialised model."""
    T = len(R)
    return sum(R[j - 1][j] - b[j] for j in range(1, T)) / (T - 1) if T > 1 else 0.0


def forgetting(R):
    """Mean over j < T-1 of the best accuracy on task j after any earlier task end minus its final one."""
    T = len(R)
    return sum(max(R[i][j] for i in range(j, T - 1)) - R[-1][j] for j in range(T - 1)) / (T - 1) if T > 1 else 0.0


def summary(R, b):
    return {"average_accuracy": average_accuracy(R), "backward_transfer": backward_transfer(R),
            "forward_transfer": forward_transfer(R, b), "forgetting": forgetting(R)}
