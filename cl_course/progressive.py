"""Progressive networks (Rusu et al. 2016, "Progressive Neural Networks", arXiv:1606.04671): every task gets a
freshly initialised column, a network of its own, whose layers also read every earlier column's activations
through lateral connections; earlier columns and their laterals are frozen. Nothing is forgotten (BWT exactly 0
in task-IL: a task is answered by its own column, which reads only frozen ones) and old features are reused;
the price is a column per task and laterals that grow with the number of columns: parameters per task grow
linearly with the tasks, in all quadratically. The task chooses the column: it needs the task at test time, or
task inference (context.py) without it.

Column k's layer i (h_0 = x, the input, shared by all columns; h_{L+1} the logits, no ReLU):

    h_i^(k) = relu(W_i^(k) h_{i-1}^(k) + U_i^(k) relu(V_i^(k) (alpha_i^(k) h_{i-1}^(<k))))     for i >= 2

where h^(<k) is the concatenation of columns 0..k-1's activations of layer i-1: Rusu et al.'s adapter for dense
layers (their section 2, "Adapters"), a learnt scalar alpha, then a projection V onto as many dimensions as one
column's layer i-1 has, so that a lateral's size grows with the number of earlier columns only through V.

What the code does differently, and why: every column has the shape of the course's MLP (the run's hidden
sizes) and its own output layer, the task's head (task-IL); alpha starts at 0.1 (the paper: "a random small
value"); a column is made when its task is first met, evaluation before training included, from a seed of its
own; earlier columns run without gradients, so the optimizer never moves them.
"""
import torch
from torch import nn

from .context import PartPerContext

ALPHA = 0.1  # the adapters' scalar at initialisation


class Adapter(nn.Module):
    """U relu(V (alpha h)): h the earlier columns' activations, [N, columns x units]."""

    def __init__(self, inputs, reduced, outputs):
        super().__init__()
        self.alpha = nn.Parameter(torch.tensor(ALPHA))
        self.project = nn.Linear(inputs, reduced)   # V
        self.out = nn.Linear(reduced, outputs, bias=False)  # U: the layer's own bias is W's

    def forward(self, h):
        return self.out(torch.relu(self.project(self.alpha * h)))


def lateral_forward(column, x, earlier):
    """A progressive column's forward pass: each layer reads the column's own previous activations and, from the
    second layer on, the earlier columns' activations of that previous layer through its lateral adapter.

    Inputs:
    - column: a Column with layers sizes[0] -> ... -> sizes[-1]: column.layers[i], an nn.Linear sizes[i] ->
      sizes[i + 1]; column.laterals, None for the first column, else column.laterals[i - 1] the Adapter of layer
      i >= 1, which takes [N, len(earlier) x sizes[i]]
    - x: [N, sizes[0]] the input, which every column reads
    - earlier: [the activations of each earlier column, as this function returns them], in column order
    Returns [h_1, ..., logits]: the column's activations of every layer, each [N, sizes[i + 1]], with a ReLU on
    every layer but the last. The earlier columns are frozen: their activations are read detached, so no gradient
    reaches them (the column's own layers and adapters train).
    """
    ### BEGIN SOLUTION
    h, out = x, []
    for i, layer in enumerate(column.layers):
        z = layer(h)
        if column.laterals is not None and i > 0:
            z = z + column.laterals[i - 1](torch.cat([e[i - 1] for e in earlier], 1).detach())
        h = z if i == len(column.layers) - 1 else torch.relu(z)
        out.append(h)
    return out
    ### END SOLUTION


class Column(nn.Module):
    """One task's column: layers sizes[0] -> ... -> sizes[-1], each after the first with an adapter from the
    `earlier` columns' previous layer; `lateral_forward`: its forward pass, the library's or the notebook's."""

    def __init__(self, sizes, earlier, lateral_forward=lateral_forward):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes, sizes[1:], strict=False))
        self.laterals = nn.ModuleList(Adapter(earlier * a, a, b) for a, b in zip(sizes[1:-1], sizes[2:], strict=False)
                                      ) if earlier else None
        self.lateral_forward = lateral_forward

    def forward(self, x, earlier):
        """The column's activations of every layer, the logits last; earlier: each earlier column's, alike."""
        return self.lateral_forward(self, x, earlier)


class Columns(nn.Module):
    """The columns; the forward pass answers with the current column in training, the shown one in eval."""

    def __init__(self, sizes):
        super().__init__()
        self.sizes = sizes
        self.columns = nn.ModuleList()
        self.current = self.shown = 0

    def forward(self, x):
        k = self.current if self.training else self.shown
        earlier = []
        with torch.no_grad():  # frozen: no graph for them (the laterals read them detached in any case)
            for column in self.columns[:k]:
                earlier.append(column(x, earlier))
        return self.columns[k](x, earlier)[-1]


class ProgressiveNetworks(PartPerContext):
    """`answers`: the notebook's functions by library name (lateral_forward), in place of the library's."""

    def __init__(self, seed=0, infer_task=False, answers=None):
        super().__init__(seed=seed, infer_task=infer_task, answers=answers)
        self.lateral_forward = self.function("lateral_forward", lateral_forward)

    def new_body(self, model):
        return Columns((model.hidden[0].in_features, *[layer.out_features for layer in model.hidden],
                        model.heads[0].out_features))

    def new_part(self, body, index):
        return Column(body.sizes, index, self.lateral_forward)  # its laterals read the `index` columns before it

    def parts(self, body):
        return body.columns
