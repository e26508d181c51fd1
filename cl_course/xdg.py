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
- Without the task (domain- and class-IL) the gate can be inferred (`infer_task=True`): each sample is given the
  gate, among those of the tasks met so far, under which the network is most confident (the lowest entropy of its
  softmax). That is not in Masse et al.; it is the "task inference" the course's third lesson measures, and
  `inference_accuracy` says how often it picks the right task (train.fit records it in History.task_inference).
- An importance computed on every seen task's test set in one pass (HW14's protocol) would see one gate for all
  of them; run the regularised combinations with the `paper` protocol (each task's own training data).
"""
import torch
import torch.nn.functional as F

from .data import index_batches
from .strategies import EWC, SI, Strategy

GATED = 0.8  # Masse et al.: 80% of each hidden layer's units off per task


class XdG(Strategy):
    """Context-dependent gating. `gated`: the fraction of each hidden layer's units a task switches off."""

    def __init__(self, *args, gated=GATED, gate_seed=0, infer_task=False, **kwargs):
        super().__init__(*args, **kwargs)
        if not 0.0 <= gated < 1.0:
            raise ValueError(f"gated is the fraction of units switched off per task, in [0, 1), got {gated}")
        self.gated, self.gate_seed, self.infer_task = gated, gate_seed, infer_task
        self.gates = {}       # task name -> [FloatTensor [units] of 0/1, one per hidden layer]
        self.current = None   # the task being trained: its gate in train mode
        self.shown = None     # the gate in eval mode (evaluation, importances)
        self.trained = []     # names of the tasks trained so far, in order: task inference chooses among their gates
        self.hooked = None    # the model the gates are attached to

    def gate(self, model, name):
        """The gate of the task called `name`, drawn on first use: in each hidden layer a random
        (1 - gated) of the units are kept, from a generator of its own (the run's other draws stay as they are)."""
        if name not in self.gates:
            g = torch.Generator().manual_seed(self.gate_seed * 7919 + len(self.gates))
            gates = []
            for layer in model.hidden:
                units = layer.out_features
                keep = torch.randperm(units, generator=g)[:max(1, round(units * (1 - self.gated)))]
                mask = torch.zeros(units, device=layer.weight.device, dtype=layer.weight.dtype)
                mask[keep.to(mask.device)] = 1.0
                gates.append(mask)
            self.gates[name] = gates
        return self.gates[name]

    def attach(self, model):
        if self.hooked is model:
            return
        for i, layer in enumerate(model.hidden):
            layer.register_forward_hook(lambda module, inputs, out, i=i: out * self.active(module)[i])
        self.hooked = model

    def active(self, module):
        return self.gates[self.current if module.training else self.shown]

    def before_task(self, model, tasks):
        self.attach(model)
        self.gate(model, tasks[-1].name)
        self.current = self.shown = tasks[-1].name
        self.trained.append(tasks[-1].name)
        super().before_task(model, tasks)

    def after_task(self, model, tasks):
        self.shown = tasks[-1].name  # an importance computed now sees the finished task's gate
        super().after_task(model, tasks)

    def predict(self, model, x, task):
        self.attach(model)
        self.gate(model, task.name)
        if not self.infer_task or not self.trained:
            self.shown = task.name
            return super().predict(model, x, task)
        scores, chosen = self.infer(model, x, task)
        self.shown = task.name
        return scores[chosen, torch.arange(len(x), device=scores.device)]

    def infer(self, model, x, task):
        """(scores [gates, N, classes] under each trained task's gate, [N] the index in self.trained of the gate
        whose softmax has the lowest entropy)."""
        scores = []
        for name in self.trained:
            self.shown = name
            scores.append(super().predict(model, x, task))
        scores = torch.stack(scores)
        p = F.softmax(scores, dim=-1)
        entropy = -(p * torch.log(p.clamp_min(1e-12))).sum(-1)  # [gates, N]
        return scores, entropy.argmin(0)

    @torch.no_grad()
    def inference_accuracy(self, model, tasks, batch_size=8192):
        """{task name: % of its test samples whose task inference chooses its own gate}, for the trained tasks."""
        model.eval()
        right = {}
        for task in (t for t in tasks if t.name in self.trained):
            model.use_head(task.head)
            hits = sum((self.infer(model, x, task)[1] == self.trained.index(task.name)).sum()
                       for x, _ in index_batches(task.x_test, task.y_test, batch_size))
            right[task.name] = 100.0 * float(hits) / len(task.y_test)  # CPU-GPU sync point, once per task
        self.shown = self.current
        return right


def with_gates(regulariser):
    """XdG on top of `regulariser` (a Strategy class): one class whose hooks gate, then regularise."""
    return type(f"XdG{regulariser.__name__}", (XdG, regulariser),
                {"__doc__": f"XdG with {regulariser.__name__}'s penalty (Masse et al.'s combination)."})


XdGSI = with_gates(SI)
XdGEWC = with_gates(EWC)
