"""Incremental moment matching (Lee et al. 2017, NeurIPS): train one network per task in sequence, each starting
from the last (weight-transfer) and optionally pulled towards it (L2-transfer, lam * ||theta - theta_prev||^2),
then merge the task networks into one: mean-IMM averages them, mode-IMM weighs each parameter by each network's
Fisher, the mode of the product of their Laplace approximations:

    mean-IMM  theta* = sum_k alpha_k theta_k
    mode-IMM  theta* = sum_k alpha_k F_k theta_k / sum_k alpha_k F_k      (elementwise, alpha_k = 1 / K)

One merged network answers every task: it runs in domain-IL (van de Ven & Tolias's scenario for it).

What the code does differently from the paper, and why:
- The merge is recomputed when each task's training ends (finish_task), over the networks of the tasks so far, so
  the accuracy matrix shows the merged network after every task; the paper merges once, after the last task.
  Training goes on from the task's own network, never from the merged one (weight-transfer).
- While a task trains, evaluation shows that task's own network (the curves), the merge only once it has ended.
- F_k is the true Fisher (fisher_diagonal, every class weighted by the model's probability) on the task's
  training data, or `samples` of it; a parameter no network has Fisher for (all F_k = 0) would divide by zero,
  so every F_k gets 1e-8 added: where all are 0, mode-IMM is mean-IMM.
- Drop-transfer (`drop` = p > 0; the paper's eq. 9) drops hidden units: in each training batch of task k > 1, each
  hidden unit, with probability p, sends the last task's outgoing weights mu_{k-1} instead of its own, and the
  others send (theta - p mu_{k-1}) / (1 - p), so that over the drops the expected weight is theta (test time uses
  theta). The input pixels are not dropped (the inputs of the first layer are not units) and biases belong to no
  incoming unit: both stay theta. Each batch is forwarded twice (the loop's pass is discarded): the price of
  keeping drop-transfer inside the strategy.
"""
import torch
import torch.nn.functional as F

from .importance import fisher_diagonal
from .strategies import Strategy, snapshot

EPS = 1e-8


def mode_merge(networks, fishers):
    """mode-IMM's merge: every parameter the Fisher-weighted mean of the task networks' values, the mode of the
    product of their Laplace approximations (equal alphas, which cancel).

    Inputs:
    - networks: [{name: tensor}], the K task networks' parameters
    - fishers: [{name: tensor}] alike, each network's diagonal Fisher F_k, >= 0
    Returns {name: tensor}: sum_k (F_k + EPS) theta_k / sum_k (F_k + EPS), elementwise. The EPS = 1e-8 added to
    every F_k is the course's convention against dividing by zero where all F_k are 0 (there the merge is the
    mean); where the Fishers are large against it, as in the self-checks, a merge without it agrees within their
    tolerance.
    """
    ### BEGIN SOLUTION
    return {n: sum((f[n] + EPS) * net[n] for net, f in zip(networks, fishers, strict=True))
            / sum(f[n] + EPS for f in fishers) for n in networks[0]}
    ### END SOLUTION


def merged(networks, fishers=None):
    """The merge of `networks` ([{name: tensor}], one per task) with equal alphas: their mean, or with `fishers`
    ([{name: tensor}] alike) the Fisher-weighted mean (mode-IMM, mode_merge)."""
    if fishers is None:
        return {n: sum(net[n] for net in networks) / len(networks) for n in networks[0]}
    return mode_merge(networks, fishers)


class IMM(Strategy):
    """mode: False for mean-IMM, True for mode-IMM; lam: L2-transfer's weight (0: weight-transfer only); drop:
    drop-transfer's p (0: off); answers: the notebook's functions by library name (fisher_diagonal, mode_merge), in
    place of the library's."""

    def __init__(self, lam=0.0, mode=False, batch_size=256, samples=None, seed=0, answers=None, drop=0.0):
        super().__init__(lam, answers)
        if not 0.0 <= drop < 1.0:
            raise ValueError(f"drop-transfer's p is in [0, 1), got {drop}")
        self.drop = drop
        self.drops = torch.Generator().manual_seed(seed + 1)  # which units drop: apart from the Fisher's sample
        self.mode, self.batch_size, self.samples = mode, batch_size, samples
        self.fisher = self.function("fisher_diagonal", fisher_diagonal)
        self.mode_merge = self.function("mode_merge", mode_merge)
        self.generator = torch.Generator().manual_seed(seed)  # the Fisher's sample of the training data
        self.networks, self.fishers = [], []  # one per finished task
        self.previous = None  # theta_{k-1}: L2-transfer's anchor
        self.merge = None     # {name: tensor}: what evaluation uses once a task has ended
        self.ended = False    # the current task's training has ended: evaluation shows the merge

    def before_task(self, model, tasks):
        self.previous = snapshot(model) if self.networks else None
        self.ended = False

    def loss(self, model, x, y, logits, tasks):
        if self.drop and self.previous is not None:
            logits = torch.func.functional_call(model, self.transferred(model), (x,))
        loss = F.cross_entropy(logits, y)
        if self.previous is None or not self.lam:
            return loss
        return loss + self.lam * sum((p - self.previous[n]).pow(2).sum() for n, p in model.named_parameters())

    def transferred(self, model):
        """Drop-transfer's weights for one batch, {name: tensor}: those of every layer whose inputs are hidden units,
        each input unit's column mu_{k-1} with probability p, else (theta - p mu_{k-1}) / (1 - p)."""
        names = {id(p): n for n, p in model.named_parameters()}
        out = {}
        for layer in [*model.hidden[1:], *model.heads]:
            name = names[id(layer.weight)]
            mu = self.previous[name]
            dropped = (torch.rand(layer.in_features, generator=self.drops) < self.drop).to(mu.device)
            out[name] = torch.where(dropped[None, :], mu, (layer.weight - self.drop * mu) / (1 - self.drop))
        return out

    def finish_task(self, model, tasks):
        self.networks.append(snapshot(model))
        if self.mode:
            task = tasks[-1]
            x, y = task.x_train, task.y_train
            if self.samples is not None and self.samples < len(x):
                chosen = torch.randperm(len(x), generator=self.generator)[:self.samples].to(x.device)
                x, y = x[chosen], y[chosen]
            model.eval()
            batches = ((x[i:i + self.batch_size], y[i:i + self.batch_size]) for i in range(0, len(x), self.batch_size))
            self.fishers.append({n: f.detach() for n, f in self.fisher(model, batches).items()})
        self.merge = self.mode_merge(self.networks, self.fishers) if self.mode else merged(self.networks)
        self.ended = True

    def predict(self, model, x, task):
        if not self.ended or self.merge is None:
            return model(x)
        return torch.func.functional_call(model, self.merge, (x,))  # the model keeps the task's own network
