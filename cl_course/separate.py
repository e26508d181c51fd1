"""Separate networks: one small network per task, trained on that task alone and untouched afterwards (van de
Ven, Tuytelaars & Tolias 2022, "Three types of incremental learning", Nature Machine Intelligence, use it as the
context-specific family's upper bound). Nothing is shared, so nothing is forgotten (BWT exactly 0 in task-IL)
and nothing is transferred either; the task chooses the network, so it needs the task at test time, or task
inference (context.py) without it.

As van de Ven et al., the comparison is at equal total parameter count: the shared MLP's parameters (its hidden
layers and every head) are split among the run's tasks, each network having the shared MLP's depth and the
widest equal hidden layers that fit its share. For van de Ven & Tolias's 784-400-400 MLP with five 2-way heads
(478,410 parameters) that is five 784-106-106-2 networks (94,766 each, 473,830 in all).

What the code does differently, and why: a task's network is made when the task is first met, evaluation before
training included (its accuracy there is an untrained network's, which forward transfer compares with), from a
seed of its own, so that the other draws of the run stay as they are.
"""
from torch import nn

from .context import PartPerContext
from .model import MLP


def network_parameters(in_features, width, depth, out_features):
    """Parameters of an MLP in_features -> width (depth times) -> out_features, biases included."""
    sizes = (in_features, *[width] * depth, out_features)
    return sum(a * b + b for a, b in zip(sizes, sizes[1:], strict=False))


def equal_share_width(total, tasks, in_features, depth, out_features):
    """The widest hidden layers for which `tasks` networks together have at most `total` parameters."""
    width = 0
    while tasks * network_parameters(in_features, width + 1, depth, out_features) <= total:
        width += 1
    if width == 0:
        raise ValueError(f"{tasks} separate networks cannot share {total} parameters: use fewer tasks")
    return width


class Networks(nn.Module):
    """One network per context; the forward pass runs the current one in training, the shown one in eval."""

    def __init__(self):
        super().__init__()
        self.networks = nn.ModuleList()
        self.current = self.shown = 0

    def forward(self, x):
        return self.networks[self.current if self.training else self.shown](x)


class SeparateNetworks(PartPerContext):
    """`tasks`: the run's number of tasks, among which the shared MLP's parameters are split."""

    def __init__(self, tasks=5, seed=0, infer_task=False, answers=None):
        super().__init__(seed=seed, infer_task=infer_task, answers=answers)
        self.tasks = tasks
        self.shape = None  # (in_features, width, depth, out_features) of every task's network

    def new_body(self, model):
        in_features, depth = model.hidden[0].in_features, len(model.hidden)
        out_features = model.heads[0].out_features
        total = sum(p.numel() for p in model.parameters())
        self.shape = (in_features, equal_share_width(total, self.tasks, in_features, depth, out_features), depth,
                      out_features)
        return Networks()

    def new_part(self, body, index):
        in_features, width, depth, out_features = self.shape
        return MLP(out_features, hidden=(width,) * depth, in_features=in_features)

    def parts(self, body):
        return body.networks

    def parameters_per_network(self):
        in_features, width, depth, out_features = self.shape
        return network_parameters(in_features, width, depth, out_features)
