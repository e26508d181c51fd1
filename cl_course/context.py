"""What the context-specific methods share: each task is a context with a part of the network of its own (a gate,
a mask, a network, a column), chosen by the task, so the task's identity is needed at test time. Without it
(domain- and class-IL) the context can be inferred: each sample is answered under the context, among those
trained so far, in which the network is most confident, the lowest entropy of its softmax. That is in none of the
methods' papers; it is the "task inference" the course's third lesson measures, and `inference_accuracy` says how
often it picks the sample's own task (train.fit records it in History.task_inference).

A subclass says how a context is shown to the forward pass in eval mode (`show`), or, where the context is
in the weights rather than in a switch (PackNet's masks), how the model answers under one (`answer`); in train
mode it uses `self.current`, the context being trained, whatever evaluation showed between two epochs.
"""
import torch
import torch.nn.functional as F

from .data import index_batches
from .strategies import Strategy


def lowest_entropy(scores):
    """Task inference: for every sample, the context under which the network is most confident, the one whose
    softmax over the classes has the lowest entropy.

    Inputs:
    - scores: [contexts, N, classes] the logits of N samples under each context
    Returns a LongTensor [N]: the context (an index along dim 0) of lowest entropy -sum_c p_c log p_c, p the softmax
    of that context's logits. A probability that underflows to 0 adds 0 (p log p -> 0 as p -> 0): the log is of p
    clamped at 1e-12, so that 0 x log 0 is not NaN. Among exactly tied entropies any choice is right.
    """
    ### BEGIN SOLUTION
    p = F.softmax(scores, dim=-1)
    entropy = -(p * torch.log(p.clamp_min(1e-12))).sum(-1)  # [contexts, N]
    return entropy.argmin(0)
    ### END SOLUTION


class ContextSpecific(Strategy):
    """`infer_task`: answer under the inferred context instead of the task's own."""

    def __init__(self, *args, infer_task=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.infer_task = infer_task
        self.names = []      # task names in the order first met (the first evaluation meets them all): a task's
                             # context is its place here
        self.trained = 0     # contexts trained so far, the current one included: inference picks among them
        self.current = None  # the context being trained

    def context(self, task):
        if task.name not in self.names:
            self.names.append(task.name)
        return self.names.index(task.name)

    def show(self, model, context):
        """Make the eval-mode forward pass use `context`."""
        raise NotImplementedError

    def before_task(self, model, tasks):
        self.current = self.context(tasks[-1])
        self.trained = max(self.trained, self.current + 1)
        super().before_task(model, tasks)

    def answer(self, model, x, context):
        """The eval-mode logits on x under `context`."""
        self.show(model, context)
        return model(x)

    def predict(self, model, x, task):
        own = self.context(task)
        if not self.infer_task or not self.trained:
            return self.answer(model, x, own)
        scores, chosen = self.infer(model, x)
        self.show(model, own)  # what an importance computed after evaluation sees
        return scores[chosen, torch.arange(len(x), device=scores.device)]

    def infer(self, model, x):
        """(scores [contexts, N, classes] under each trained context, [N] the context of lowest entropy)."""
        scores = torch.stack([self.answer(model, x, context) for context in range(self.trained)])
        return scores, self.function("lowest_entropy", lowest_entropy)(scores)

    @torch.no_grad()
    def inference_accuracy(self, model, tasks, batch_size=8192):
        """{task name: % of its test samples whose inferred context is the task's own}, for the trained tasks."""
        model.eval()
        right = {}
        for task in tasks:
            own = self.context(task)
            if own >= self.trained:
                continue
            model.use_head(task.head)
            hits = sum((self.infer(model, x)[1] == own).sum()
                       for x, _ in index_batches(task.x_test, task.y_test, batch_size))
            right[task.name] = 100.0 * float(hits) / len(task.y_test)  # CPU-GPU sync point, once per task
        return right


class PartPerContext(ContextSpecific):
    """A module of its own per context (separate networks' network, progressive networks' column) in a body that
    replaces the model's layers (MLP.replace_body). A part is made when its context is first met, evaluation
    before training included, from a seed of its own, so that the run's other draws stay as they are. A subclass
    says how to make the body from the shared model (`new_body`), a part (`new_part`), and where the body keeps
    them (`parts`); the body answers with `current` in training and `shown` in eval."""

    def __init__(self, seed=0, infer_task=False, answers=None):
        super().__init__(infer_task=infer_task, answers=answers)
        self.seed = seed
        self.device = None  # the model's, where new parts go

    def new_body(self, model):
        raise NotImplementedError

    def new_part(self, body, index):
        raise NotImplementedError

    def parts(self, body):
        raise NotImplementedError

    def body(self, model, context):
        """The body, with the part of `context` made (and every one before it) if new."""
        if model.body is None:
            self.device = next(model.parameters()).device
            model.replace_body(self.new_body(model))
        parts = self.parts(model.body)
        while len(parts) <= context:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed * 7919 + len(parts))
                part = self.new_part(model.body, len(parts))
            parts.append(part.to(self.device))
        return model.body

    def prepare_model(self, model, tasks):
        self.body(model, self.context(tasks[-1]))

    def before_task(self, model, tasks):
        super().before_task(model, tasks)
        self.body(model, self.current).current = self.current

    def show(self, model, context):
        self.body(model, context).shown = context
