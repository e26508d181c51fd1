"""Generative replay (Shin et al. 2017, DGR) with a variational autoencoder, as van de Ven & Tolias run it:
a VAE learns the inputs of every task alongside the classifier (its own replay included), and its samples,
labelled by the previous classifier, are replayed. With a temperature: DGR+distill, the previous
classifier's soft outputs instead of its hard labels.
"""
import torch
import torch.nn.functional as F
from torch import nn

from .data import MNIST_MEAN, MNIST_STD, batch_indices
from .strategies import Replay, Strategy, frozen_copy, outputs_of_old_heads


def vae_loss(reconstruction_logits, pixels, mu, logvar):
    """The negative ELBO, mean over samples: sum over pixels of the Bernoulli cross-entropy of the pixels
    (in [0, 1]) under sigmoid(logits), plus KL(N(mu, exp(logvar)) || N(0, I)) summed over latent units,
    = -1/2 sum (1 + logvar - mu^2 - exp(logvar))."""
    reconstruction = F.binary_cross_entropy_with_logits(reconstruction_logits, pixels, reduction="none").sum(1)
    kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)
    return (reconstruction + kl).mean()


def mlp(sizes):
    layers = []
    for a, b in zip(sizes, sizes[1:], strict=False):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])  # no ReLU after the last layer


class VAE(nn.Module):
    """Encoder in-400-400 -> (mu, logvar) of 100 latent units; decoder 100-400-400-in, pixel logits.
    It reads and writes the classifier's normalised inputs, and models the pixels in [0, 1]."""

    def __init__(self, in_features=784, hidden=(400, 400), latent=100):
        super().__init__()
        self.encoder = nn.Sequential(mlp((in_features, *hidden)), nn.ReLU())
        self.mu, self.logvar = nn.Linear(hidden[-1], latent), nn.Linear(hidden[-1], latent)
        self.decoder = mlp((latent, *hidden[::-1], in_features))
        self.latent = latent

    def loss(self, x):
        pixels = (x * MNIST_STD + MNIST_MEAN).clamp(0, 1)
        h = self.encoder(pixels)
        mu, logvar = self.mu(h), self.logvar(h)
        z = mu + (0.5 * logvar).exp() * torch.randn_like(mu)  # the reparameterisation trick
        return vae_loss(self.decoder(z), pixels, mu, logvar)

    @torch.no_grad()
    def sample(self, n):
        """n generated inputs, normalised as the classifier's: [n, in_features]."""
        z = torch.randn(n, self.latent, device=self.mu.weight.device, dtype=self.mu.weight.dtype)
        return (torch.sigmoid(self.decoder(z)) - MNIST_MEAN) / MNIST_STD


class GenerativeReplay(Strategy):
    """DGR: each batch beside as many samples of the previous VAE, labelled by the previous classifier
    (hard labels; soft ones at `temperature` for DGR+distill). The loop calls replay() once per batch
    before after_step(), which trains the VAE on the same batch and replay. With `iterations`, the VAE
    trains that many batches per task in all: at the task's end it goes on alone on random batches of the
    task's data (replaying its predecessor likewise), for runs whose classifier takes too few batches for
    the VAE (the quick profile's 40); after the last task too, as the loop calls after_task after every task,
    though nothing samples that VAE."""

    def __init__(self, seed=0, temperature=None, lr=1e-3, iterations=None, batch_size=128, hidden=(400, 400),
                 latent=100):
        super().__init__()
        self.temperature = temperature  # None: DGR's hard labels
        self.lr, self.iterations, self.batch_size, self.hidden, self.latent = lr, iterations, batch_size, hidden, latent
        self.generator = torch.Generator().manual_seed(seed)  # the VAE's own batches
        self.vae = self.previous = self.previous_vae = None

    def before_task(self, model, tasks):
        if self.vae is None:
            device = next(model.parameters()).device
            self.vae = VAE(tasks[0].x_train[0].numel(), self.hidden, self.latent).to(device)
        self.optimizer = torch.optim.Adam(self.vae.parameters(), lr=self.lr)  # recreated per task, as the classifier's
        self.vae_steps = 0

    def replay(self, model, x, tasks):
        self.current, self.generated = x, None
        if self.previous_vae is None:  # set with the previous classifier, at the end of the first task
            return None
        self.generated = self.previous_vae.sample(len(x))
        xs, head, logits = outputs_of_old_heads(self.previous, self.generated, tasks)
        if self.temperature is None:
            return Replay(xs, logits.argmax(1), head)
        return Replay(xs, logits, head, self.temperature)

    def after_step(self, model, tasks):
        self.train_vae(self.current, self.generated, len(tasks))

    def train_vae(self, x, generated, seen):
        """One step of the VAE on x and, from the second task on, its predecessor's samples, weighted as the
        classifier weighs the current batch and its replay."""
        loss = self.vae.loss(x)
        if generated is not None:
            loss = loss / seen + (1 - 1 / seen) * self.vae.loss(generated)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.vae_steps += 1

    def after_task(self, model, tasks):
        x = tasks[-1].x_train
        remaining = (self.iterations or 0) - self.vae_steps
        if remaining > 0:
            for idx in batch_indices(len(x), self.batch_size, True, self.generator, x.device, remaining):
                generated = self.previous_vae.sample(len(idx)) if self.previous_vae is not None else None
                self.train_vae(x[idx], generated, len(tasks))
        self.previous, self.previous_vae = frozen_copy(model), frozen_copy(self.vae)
