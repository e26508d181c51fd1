"""XdG, context-dependent gating (Masse, Grant & Freedman 2018, PNAS): every task switches off a fixed random
80% of each hidden layer's units, so that tasks train and use largely separate sub-networks of one MLP. It is
the first method of the third family (context-specific components): it needs the task's identity at test time
to choose the gate. Alone, or on top of a regulariser (`with_gates(SI)`, `with_gates(EWC)`): Masse et al.'s best
results came from the combination, since the 20% that two tasks share still drift.

What the code does differently from the paper, and why:
- The gate multiplies each hidden Linear layer's output before its ReLU; relu(0 * z) = 0 * relu(z), so this is
  the paper's gating of the units' activity. The output layer (and the heads of task-IL) is never gated.
- Gates are drawn per task from the run's seed when the task is first met (evaluation of a task not yet trained
  included), not all at once: the number of tasks need not be known.
- Without the task (domain- and class-IL) the gate can be inferred (`infer_task=True`, context.py).
- An importance computed on every seen task's test set in one pass (HW14's protocol) would see one gate for all
  of them; run the regularised combinations with the `paper` protocol (each task's own training data).
"""
import torch

from .context import ContextSpecific
from .model import gate_hidden_layers
from .strategies import EWC, SI

GATED = 0.8  # Masse et al.: 80% of each hidden layer's units off per task


class XdG(ContextSpecific):
    """Context-dependent gating. `gated`: the fraction of each hidden layer's units a task switches off."""

    def __init__(self, *args, gated=GATED, gate_seed=0, infer_task=False, **kwargs):
        super().__init__(*args, infer_task=infer_task, **kwargs)
        if not 0.0 <= gated < 1.0:
            raise ValueError(f"gated is the fraction of units switched off per task, in [0, 1), got {gated}")
        self.gated, self.gate_seed = gated, gate_seed
        self.gates = []      # per context: [FloatTensor [units] of 0/1, one per hidden layer]
        self.shown = None    # the context whose gate eval mode uses (evaluation, importances)
        self.hooked = None   # the model the gates are attached to

    def gate(self, model, context):
        """The gate of `context`, drawn on first use (with every one before it): in each hidden layer a random
        (1 - gated) of the units are kept, from a generator of its own (the run's other draws stay as they are)."""
        while len(self.gates) <= context:
            g = torch.Generator().manual_seed(self.gate_seed * 7919 + len(self.gates))
            gates = []
            for layer in model.hidden:
                units = layer.out_features
                keep = torch.randperm(units, generator=g)[:max(1, round(units * (1 - self.gated)))]
                mask = torch.zeros(units, device=layer.weight.device, dtype=layer.weight.dtype)
                mask[keep.to(mask.device)] = 1.0
                gates.append(mask)
            self.gates.append(gates)
        return self.gates[context]

    def attach(self, model):
        if self.hooked is not model:
            gate_hidden_layers(model, lambda i, module: self.gates[self.current if module.training else self.shown][i])
            self.hooked = model

    def show(self, model, context):
        self.attach(model)
        self.gate(model, context)
        self.shown = context

    def before_task(self, model, tasks):
        self.show(model, self.context(tasks[-1]))
        super().before_task(model, tasks)

    def after_task(self, model, tasks):
        self.shown = self.current  # an importance computed now sees the finished task's gate
        super().after_task(model, tasks)


def with_gates(regulariser):
    """XdG on top of `regulariser` (a Strategy class): one class whose hooks gate, then regularise."""
    return type(f"XdG{regulariser.__name__}", (XdG, regulariser),
                {"__doc__": f"XdG with {regulariser.__name__}'s penalty (Masse et al.'s combination)."})


XdGSI = with_gates(SI)
XdGEWC = with_gates(EWC)
