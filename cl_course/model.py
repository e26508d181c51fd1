"""HW14's MLP: 784-1024-512-256-10 with ReLU, optionally one output head per task (van de Ven &
Tolias's Split MNIST MLP is the same class with hidden=(400, 400))."""
import torch
from torch import nn


class MLP(nn.Module):
    def __init__(self, out_features=10, heads=1, hidden=(1024, 512, 256), in_features=784):
        super().__init__()
        sizes = (in_features, *hidden)
        # fc1..fc3 as in the HW14 notebook, so parameter names match what students have seen
        for i, (a, b) in enumerate(zip(sizes, sizes[1:], strict=False), start=1):
            setattr(self, f"fc{i}", nn.Linear(a, b))
        self.hidden = [getattr(self, f"fc{i}") for i in range(1, len(sizes))]
        if heads == 1:
            self.fc4 = nn.Linear(sizes[-1], out_features)
            self.heads = [self.fc4]
        else:
            self.heads = nn.ModuleList(nn.Linear(sizes[-1], out_features) for _ in range(heads))
        self.head = 0  # which head forward() uses; set with use_head()
        self.body = None  # a network of a strategy's in place of the layers above (replace_body)

    def replace_body(self, body):
        """Answer with `body` (a module: body(x [N, in_features]) -> logits) instead of the hidden layers and
        heads, which are removed, so that the model's parameters are the body's alone (separate networks,
        progressive columns: networks of their own per task, chosen by the strategy, not by the head)."""
        for name in list(self._modules):
            delattr(self, name)
        self.hidden, self.heads, self.body = [], [], body
        return self

    def use_head(self, head):
        """Route forward() through `head` (a shared single head ignores this)."""
        self.head = head if len(self.heads) > 1 else 0
        return self

    def features(self, x):
        """The last hidden layer's output, [N, hidden[-1]] (iCaRL's feature space)."""
        x = x.reshape(len(x), -1)
        for layer in self.hidden:
            x = torch.relu(layer(x))
        return x

    def forward(self, x, head=None):
        """Logits through `head` (default: the one use_head chose); a LongTensor [N] routes each sample
        through its own head (replayed samples of several tasks in one batch)."""
        if self.body is not None:
            return self.body(x.reshape(len(x), -1))
        head = self.head if head is None or len(self.heads) == 1 else head
        z = self.features(x)
        if isinstance(head, torch.Tensor):
            every = torch.stack([h(z) for h in self.heads], 1)  # [N, heads, out]: the heads are tiny
            return every[torch.arange(len(z), device=z.device), head]
        return self.heads[head](z)


def gate_hidden_layers(model, gate):
    """Multiply each hidden layer's output by gate(i, layer), its multiplier (a tensor [units] or a number), before
    the ReLU: relu(a z) = a relu(z) for a >= 0, so this gates the units' activity (XdG, HAT)."""
    for i, layer in enumerate(model.hidden):
        layer.register_forward_hook(lambda module, inputs, out, i=i: out * gate(i, module))
