"""PackNet (Mallya & Lazebnik 2018, CVPR): when a task's training ends, keep its largest weights among those
still free, give them to that task and freeze them; the rest are set to zero and left free for the next tasks.
A task is evaluated with the weights of its own and of the tasks before it, so later tasks cannot change its
answers: in task-IL its backward transfer is exactly zero (the task is evaluated after its pruning, which
`finish_task` does). It needs the task at test time (its mask), as every context-specific method, or infers it
(`infer_task=True`, context.py): the mask under which the answer is most confident.

What the code does differently from the paper, and why:
- Pruned and frozen are the hidden layers' weights; the hidden biases train on the first task only and are frozen
  after it, as in the paper; the output heads are not pruned (task-IL gives each task its own; with the task
  inferred, domain- and class-IL, the one output layer is shared and every task trains it).
- Each task keeps `share` of every hidden layer's weights (default 1 / the run's tasks, so that five tasks fill
  the network), the largest by magnitude among those still free; when fewer are free it keeps what is left, and a
  task that finds none trains its head only: the capacity has run out. The paper prunes a fraction of the free
  weights (50% or 75%); a share of the whole layer makes the capacity, and its end, easy to see.
- After pruning, the kept weights are trained again on the task for `retrain` batches (the paper's post-pruning
  fine-tuning), with Adam at the run's learning rate.
"""
import torch
import torch.nn.functional as F

from .context import ContextSpecific
from .data import batch_indices


def prune_mask(weight, free, keep):
    """Which weights of a layer a task keeps when PackNet prunes it: the `keep` largest in magnitude among the
    free ones.

    Inputs:
    - weight: [out, in] the layer's weights
    - free: [out, in] bool, True where no task owns the weight yet: only these may be kept
    - keep: int, how many to keep; when fewer are free, every free one is kept
    Returns [out, in] bool, True at the kept weights; a frozen weight (not free) is never kept. Among exactly
    tied magnitudes any choice is right (the course's convention: the self-checks' weights have no ties).
    """
    ### BEGIN SOLUTION
    keep = min(keep, int(free.sum()))
    magnitude = torch.where(free, weight.abs(), torch.full_like(weight, -1.0))  # frozen: below every free weight
    kept = torch.zeros(weight.numel(), dtype=torch.bool, device=weight.device)
    kept[magnitude.flatten().topk(keep).indices] = True
    return kept.view(weight.shape)
    ### END SOLUTION


class PackNet(ContextSpecific):
    """`share`: the fraction of each hidden layer's weights a task keeps; `retrain`: batches of fine-tuning of the
    kept weights after pruning; `lr`, `batch_size`: those batches' Adam learning rate and size; `answers`: the
    notebook's functions by library name (prune_mask), in place of the library's."""

    def __init__(self, share=0.2, retrain=50, lr=1e-3, batch_size=128, seed=0, infer_task=False, answers=None):
        super().__init__(infer_task=infer_task, answers=answers)
        if not 0.0 < share <= 1.0:
            raise ValueError(f"share is the fraction of each layer a task keeps, in (0, 1], got {share}")
        self.share, self.retrain, self.lr, self.batch_size = share, retrain, lr, batch_size
        self.generator = torch.Generator().manual_seed(seed)  # the retraining's batches
        self.owner = None  # {weight name: LongTensor, its shape}: 0 free, k the task number (context + 1) keeping it
        self.keeping = set()  # the numbers of the tasks that kept weights when pruned
        self.prune_mask = self.function("prune_mask", prune_mask)

    def weights(self, model):
        return {f"fc{i}.weight": layer.weight for i, layer in enumerate(model.hidden, start=1)}

    def biases(self, model):
        return [layer.bias for layer in model.hidden]

    def before_task(self, model, tasks):
        if self.owner is None:
            self.owner = {n: torch.zeros_like(w, dtype=torch.long) for n, w in self.weights(model).items()}
        super().before_task(model, tasks)

    @property
    def number(self):
        return self.current + 1  # of the task being trained: 0 in `owner` means free

    def adjust_gradients(self, model, tasks):
        """Only free weights learn (before pruning) or the task's own (while retraining); biases on task 1 only."""
        for name, w in self.weights(model).items():
            if w.grad is not None:
                w.grad.mul_(self.owner[name] == self.trainable)
        if self.number > 1:
            for b in self.biases(model):
                if b.grad is not None:
                    b.grad.zero_()

    @property
    def trainable(self):
        return self.number if self.pruned(self.number) else 0

    def pruned(self, number):
        return number in self.keeping  # a set: this is asked every batch

    def finish_task(self, model, tasks):
        """Prune and fine-tune before the task's last evaluation: the accuracy matrix holds it as it is kept."""
        number = self.number
        with torch.no_grad():
            for name, w in self.weights(model).items():
                kept = self.prune_mask(w, self.owner[name] == 0, round(self.share * w.numel()))
                self.owner[name][kept] = number
                if kept.any():
                    self.keeping.add(number)
                w[self.owner[name] == 0] = 0.0  # pruned: free for the next tasks, and out of this one's answers
        if self.pruned(number) and self.retrain:
            self.fine_tune(model, tasks[-1])

    def fine_tune(self, model, task):
        model.train()
        model.use_head(task.head)
        optimizer = torch.optim.Adam(model.parameters(), lr=self.lr)
        for idx in batch_indices(len(task.x_train), self.batch_size, True, self.generator, task.x_train.device,
                                 self.retrain):
            loss = F.cross_entropy(model(task.x_train[idx]), task.y_train[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.adjust_gradients(model, [task])
            optimizer.step()

    def answer(self, model, x, context):
        """The logits with only the weights of `context`'s task and the tasks before it (and, for the task in
        training before its pruning, the free ones too), the model's own weights untouched."""
        number = context + 1
        if self.owner is None:
            return model(x)
        masked = {}
        for name, w in self.weights(model).items():
            owner = self.owner[name]
            use = (owner >= 1) & (owner <= number)
            if number == self.number and not self.pruned(number):
                use |= owner == 0
            masked[name] = w * use
        return torch.func.functional_call(model, masked, (x,))

    def show(self, model, context):
        pass  # a context is the weights `answer` masks, not a state of the model

    def capacity_left(self):
        """{weight name: % of its weights still free}."""
        return {n: 100.0 * float((o == 0).float().mean()) for n, o in self.owner.items()}
