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
        head = self.head if head is None or len(self.heads) == 1 else head
        z = self.features(x)
        if isinstance(head, torch.Tensor):
            every = torch.stack([h(z) for h in self.heads], 1)  # [N, heads, out]: the heads are tiny
            return every[torch.arange(len(z), device=z.device), head]
        return self.heads[head](z)
