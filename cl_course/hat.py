"""HAT, hard attention to the task (Serra, Suris, Miron & Karatzoglou 2018, ICML): every task learns a gate per
hidden unit, a = sigmoid(s e) of a task embedding e, that multiplies the unit's activity. The gates of the tasks
so far add up to a cumulative attention a_<t (their elementwise max); a weight between two units that earlier
tasks attend to is frozen, in proportion: its gradient is multiplied by 1 - min(a_<t of its output unit, a_<t of
its input unit). The scale s is annealed within each epoch from 1/s_max towards s_max, so that the gates start
soft and end almost binary; at test time s = s_max and the task chooses its embedding: it needs the task, or
infers it (`infer_task=True`, context.py): the embedding under which the answer is most confident.

The two parts that make it train (the paper's sections 2.4-2.6, and the authors' code):
- embedding gradient compensation: the annealing scales e's gradient by s; it is rescaled to what it would be
  at s_max, times the ratio of the sigmoid's slopes,
      grad_e <- s_max (cosh(s e) + 1) / (s (cosh(e) + 1)) grad_e      (s e clamped to [-50, 50] in the cosh)
  and e is clamped to [-6, 6] after each step (a gate is then 0 or 1 within float precision at s_max = 400);
- a sparsity regulariser, c * sum a_t (1 - a_<t) / sum (1 - a_<t) over all gates, so that a task spends few
  units that earlier tasks left free.

What the code does differently, and why: the gates are on the hidden layers of the course's MLP (the paper also
gates convolutions); the output heads are the task's own (task-IL), never gated or masked (with the task
inferred, domain- and class-IL, the one output layer is shared and every task trains it); a hidden bias is
masked as its unit (1 - a_<t); embeddings start Gaussian as in the paper, drawn from the run's seed by a
generator of their own; s follows the authors' code, 1/s_max + (s_max - 1/s_max) b / B at batch b of B.
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

from .context import ContextSpecific
from .model import gate_hidden_layers

S_MAX = 400.0     # the paper's s_max
CLAMP = 6.0       # |e| after every step
COSH_CLAMP = 50.0  # s e inside the cosh: cosh(400 * 6) would overflow
SPARSITY = 0.75   # the paper's c for its MNIST experiments


def hat_gradient_mask(a_out, a_in):
    """The factor HAT multiplies a hidden layer's weight gradient by: a weight between two units that earlier tasks
    attend to is frozen, in proportion to the smaller of the two attentions.

    Inputs:
    - a_out: [units_out] the cumulative attention a_<t of the layer's output units, in [0, 1]
    - a_in: [units_in] that of its input units (ones for the first layer, whose inputs, the pixels, no gate closes)
    Returns [units_out, units_in], shaped like the layer's weight: 1 - min(a_out[i], a_in[j]) at (i, j).
    """
    ### BEGIN SOLUTION
    return 1 - torch.minimum(a_out[:, None], a_in[None, :])
    ### END SOLUTION


def compensation(e, s, s_max=S_MAX):
    """The factor HAT multiplies a task embedding's gradient by: the annealing scales e's gradient by s, and this
    rescales it to what it would be at s_max, times the ratio of the sigmoid's slopes at e and at s e.

    Inputs:
    - e: [units] a layer's task embedding (detached)
    - s: the annealed scale of this batch, in [1/s_max, s_max]
    - s_max: the scale at the end of the annealing and at test time
    Returns [units]: s_max (cosh(s e) + 1) / (s (cosh(e) + 1)). s e is clamped to [-50, 50] inside the cosh, the
    course's convention against overflow (cosh(400 x 6) is inf in float32 and float64): an unclamped form is the
    same number wherever |s e| <= 50.
    """
    ### BEGIN SOLUTION
    return s_max * (torch.cosh((s * e).clamp(-COSH_CLAMP, COSH_CLAMP)) + 1) / (s * (torch.cosh(e) + 1))
    ### END SOLUTION


def annealed(batch, batches, s_max=S_MAX):
    """s at `batch` (from 0) of `batches` in an epoch."""
    return 1 / s_max + (s_max - 1 / s_max) * batch / batches


class HAT(ContextSpecific):
    """Hard attention to the task. `batch_size`, `iterations`: the run's, which give the batches of an epoch (the
    annealing's period). The task embeddings are parameters of the model (model.hat_embeddings[layer][task]),
    added in prepare_model so that the task's optimizer trains them. `answers`: the notebook's functions by library
    name (hat_gradient_mask, compensation), in place of the library's."""

    def __init__(self, batch_size=128, iterations=None, s_max=S_MAX, sparsity=SPARSITY, seed=0, infer_task=False,
                 answers=None):
        super().__init__(infer_task=infer_task, answers=answers)
        self.gradient_mask = self.function("hat_gradient_mask", hat_gradient_mask)
        self.compensation = self.function("compensation", compensation)
        self.generator = torch.Generator().manual_seed(seed)  # the embeddings' initial values
        self.batch_size, self.iterations, self.s_max, self.sparsity = batch_size, iterations, s_max, sparsity
        self.batches, self.batch, self.s = 1, 0, s_max
        self.cumulative = None  # [a_<t per hidden layer], FloatTensor [units]; None before the first task ends
        self.shown = None       # the context whose embedding eval mode uses (None: a task not trained yet, ungated)
        self.hooked = None

    def gates(self, model, index, s):
        return [torch.sigmoid(s * layer[index]) for layer in model.hat_embeddings]

    def prepare_model(self, model, tasks):
        if not hasattr(model, "hat_embeddings"):
            model.hat_embeddings = nn.ModuleList(nn.ParameterList() for _ in model.hidden)
        index = self.context(tasks[-1])
        for layer, embeddings in zip(model.hidden, model.hat_embeddings, strict=True):
            while len(embeddings) <= index:  # a task evaluated before it was trained has its index already
                initial = torch.randn(layer.out_features, generator=self.generator)
                embeddings.append(nn.Parameter(initial.to(layer.weight.device)))
        if self.hooked is not model:
            gate_hidden_layers(model, lambda i, module: self.gate_of(model, i, module))
            self.hooked = model

    def gate_of(self, model, i, module):
        if module.training:
            return torch.sigmoid(self.s * model.hat_embeddings[i][self.current])
        if self.shown is None:
            return 1.0
        return torch.sigmoid(self.s_max * model.hat_embeddings[i][self.shown])

    def before_task(self, model, tasks):
        super().before_task(model, tasks)
        self.shown = self.current
        n = len(tasks[-1].x_train)
        self.batches = self.iterations or math.ceil(n / self.batch_size)
        self.batch = 0
        self.s = annealed(0, self.batches, self.s_max)

    def loss(self, model, x, y, logits, tasks):
        gates = self.gates(model, self.current, self.s)
        before = self.cumulative or [torch.zeros_like(g) for g in gates]
        used = sum((g * (1 - a)).sum() for g, a in zip(gates, before, strict=True))
        free = sum((1 - a).sum() for a in before)
        return F.cross_entropy(logits, y) + self.sparsity * used / free

    def adjust_gradients(self, model, tasks):
        if self.cumulative is not None:
            # a_<t of a layer's inputs: the pixels of the first are not gated (attention 1)
            into = self.cumulative[0].new_ones(model.hidden[0].in_features)
            for layer, a in zip(model.hidden, self.cumulative, strict=True):
                if layer.weight.grad is not None:
                    layer.weight.grad.mul_(self.gradient_mask(a, into))
                    layer.bias.grad.mul_(1 - a)
                into = a
        for embeddings in model.hat_embeddings:
            e = embeddings[self.current]
            if e.grad is not None:
                e.grad.mul_(self.compensation(e.detach(), self.s, self.s_max))

    def after_step(self, model, tasks):
        with torch.no_grad():
            for embeddings in model.hat_embeddings:
                embeddings[self.current].clamp_(-CLAMP, CLAMP)
        self.batch = (self.batch + 1) % self.batches
        self.s = annealed(self.batch, self.batches, self.s_max)

    def after_task(self, model, tasks):
        with torch.no_grad():
            gates = self.gates(model, self.current, self.s_max)
        self.cumulative = gates if self.cumulative is None else [
            torch.maximum(a, g) for a, g in zip(self.cumulative, gates, strict=True)]

    def show(self, model, context):
        trained = hasattr(model, "hat_embeddings") and context < len(model.hat_embeddings[0])
        self.shown = context if trained else None

    def units_used(self):
        """% of each hidden layer's units some task so far attends to (a_<t > 0.5)."""
        return [100.0 * float((a > 0.5).float().mean()) for a in self.cumulative or []]
