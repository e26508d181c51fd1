"""Generative replay: the VAE's loss against its formula written out with explicit logs, the VAE's forward
pass and samples against a hand-written one, and DGR / DGR+distill probed inside fit()."""
import copy
import math

import pytest
import torch

from cl_course.data import Task
from cl_course.generative import VAE, GenerativeReplay, vae_loss
from cl_course.methods import make_strategy
from cl_course.model import MLP
from cl_course.profiles import split_config
from cl_course.strategies import Replay
from cl_course.train import fit

MEAN, STD = 0.1307, 0.3081


def small_model(heads=1):
    torch.manual_seed(0)
    return MLP(out_features=4, heads=heads, hidden=(6, 5), in_features=8)


def small_vae():
    torch.manual_seed(1)
    return VAE(8, hidden=(6, 5), latent=3)


def tasks_with_heads(heads, n_train=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [Task(f"t{k}", torch.randn(n_train, 8, generator=g), torch.randint(0, 4, (n_train,), generator=g),
                 torch.randn(6, 8, generator=g), torch.randint(0, 4, (6,), generator=g), head=h)
            for k, h in enumerate(heads)]


def linear(layer, x):
    return x @ layer.weight.T + layer.bias


def by_hand(model, x, head):
    h = x
    for layer in (model.fc1, model.fc2):
        h = linear(layer, h).clamp(min=0)
    return linear(model.heads[head], h)


def decode_by_hand(vae, z):
    d = vae.decoder  # Linear, ReLU, Linear, ReLU, Linear
    return linear(d[4], linear(d[2], linear(d[0], z).clamp(min=0)).clamp(min=0))


def negative_elbo(logits, pixels, mu, logvar):
    """Per sample: sum over pixels of -[x log s + (1 - x) log(1 - s)], s = 1 / (1 + e^-logit), plus
    KL(N(mu, e^logvar) || N(0, 1)) = sum over units of (e^logvar + mu^2 - 1 - logvar) / 2; mean over samples."""
    total = 0.0
    for i in range(len(logits)):
        for j in range(len(logits[i])):
            s, x = 1 / (1 + math.exp(-logits[i][j])), pixels[i][j]
            total -= x * math.log(s) + (1 - x) * math.log(1 - s)
        for m, lv in zip(mu[i], logvar[i], strict=True):
            total += 0.5 * (math.exp(lv) + m * m - 1 - lv)
    return total / len(logits)


# ---------------------------------------------------------------- the VAE

def test_vae_loss_against_its_formula():
    logits = [[0.5, -1.0, 2.0], [0.0, 1.0, -0.5]]    # 2 samples x 3 pixels
    pixels = [[1.0, 0.0, 0.7], [0.2, 1.0, 0.0]]
    mu, logvar = [[0.1, -0.3], [0.0, 0.5]], [[0.2, -0.1], [0.0, 0.3]]  # 2 latent units
    got = vae_loss(*(torch.tensor(v, dtype=torch.float64) for v in (logits, pixels, mu, logvar))).item()
    assert got == pytest.approx(negative_elbo(logits, pixels, mu, logvar), rel=1e-12)


def test_vae_loss_of_a_perfect_prior_is_the_reconstruction_alone():
    logits, pixels = torch.tensor([[0.0, 0.0]]), torch.tensor([[1.0, 0.0]])
    mu, logvar = torch.zeros(1, 4), torch.zeros(1, 4)  # N(0, 1) itself: KL = 0
    assert vae_loss(logits, pixels, mu, logvar).item() == pytest.approx(2 * math.log(2), rel=1e-6)


def test_vae_loss_method_against_a_hand_written_forward_pass():
    vae = small_vae().double()
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(5, 8, generator=gen, dtype=torch.float64) * 2  # some map outside [0, 1]: clamped
    torch.manual_seed(7)
    got = vae.loss(x).item()
    pixels = (x * STD + MEAN).clamp(0, 1)
    e = vae.encoder[0]  # Linear, ReLU, Linear; then the encoder's own ReLU
    h = linear(e[2], linear(e[0], pixels).clamp(min=0)).clamp(min=0)
    mu, logvar = linear(vae.mu, h), linear(vae.logvar, h)
    torch.manual_seed(7)
    z = mu + torch.exp(logvar / 2) * torch.randn(mu.shape, dtype=torch.float64)  # the same noise
    logits = decode_by_hand(vae, z)
    expected = negative_elbo(logits.tolist(), pixels.tolist(), mu.tolist(), logvar.tolist())
    assert got == pytest.approx(expected, rel=1e-10)
    assert bool(((pixels == 0) | (pixels == 1)).any())  # the clamp was exercised


def test_vae_samples_have_the_right_shape_and_are_normalised_like_the_data():
    vae = small_vae()
    torch.manual_seed(3)
    x = vae.sample(7)
    assert x.shape == (7, 8) and not x.requires_grad
    pixels = x * STD + MEAN
    assert bool(((pixels >= -1e-6) & (pixels <= 1 + 1e-6)).all())
    torch.manual_seed(3)
    z = torch.randn(7, 3)
    torch.testing.assert_close(pixels, torch.sigmoid(decode_by_hand(vae, z)), rtol=1e-5, atol=1e-6)
    assert x.std(0).min() > 0  # different samples from different z


def test_vae_samples_in_the_vaes_own_precision():
    vae = small_vae().double()
    x = vae.sample(4)
    assert x.dtype == torch.float64 and x.shape == (4, 8)


def test_generative_replay_builds_the_papers_vae_for_the_inputs():
    dgr, tasks = GenerativeReplay(), tasks_with_heads([0])
    dgr.before_task(small_model(), tasks)
    assert dgr.vae.encoder[0][0].in_features == 8 and dgr.vae.decoder[-1].out_features == 8
    assert dgr.vae.encoder[0][0].out_features == 400 and dgr.vae.latent == 100


# ---------------------------------------------------------------- DGR inside fit()

class ProbedDGR(GenerativeReplay):
    def before_task(self, model, tasks):
        super().before_task(model, tasks)
        self.starts = getattr(self, "starts", []) + [copy.deepcopy(self.vae)]
        self.seen = len(tasks)
        if not hasattr(self, "vae_inputs"):  # record what after_step trains the VAE on
            self.vae_inputs, loss = [], self.vae.loss

            def recording(x):
                self.vae_inputs.append((self.seen, x))
                return loss(x)
            self.vae.loss = recording

    def replay(self, model, x, tasks):
        state = torch.get_rng_state()
        out = super().replay(model, x, tasks)
        expected = None
        if out is not None:  # the previous VAE's samples, from the same random numbers
            with torch.random.fork_rng(devices=[]):
                torch.set_rng_state(state)
                expected = self.copies[-1][1].sample(len(x))
        self.calls = getattr(self, "calls", []) + [(len(tasks), x, out, self.generated, expected)]
        return out

    def after_task(self, model, tasks):
        super().after_task(model, tasks)
        vae = copy.deepcopy(self.vae)
        del vae.loss  # the recording wrapper, not the method
        self.copies = getattr(self, "copies", []) + [(copy.deepcopy(model), vae)]


def params(module):
    return torch.cat([p.detach().flatten() for p in module.parameters()])


@pytest.mark.parametrize("temperature", [None, 2.0])   # DGR, DGR+distill
@pytest.mark.parametrize("heads", [[0, 0, 0], [0, 1, 2]])  # one shared head, task-IL heads
def test_generative_replay_in_the_loop(temperature, heads):
    tasks = tasks_with_heads(heads)
    dgr = ProbedDGR(temperature=temperature)
    dgr.vae = small_vae()  # instead of the paper's 400-400-100: before_task keeps a VAE it already has
    model = small_model(heads=3 if heads[-1] else 1)
    fit(model, tasks, dgr, epochs=1, batch_size=8, lr=1e-2, progress=False)
    assert len(dgr.copies) == 3 and {c[0] for c in dgr.calls} == {1, 2, 3}  # after_task after every task
    for seen, x, out, generated, expected in dgr.calls:
        if seen == 1:
            assert out is None and generated is None
            continue
        previous, _ = dgr.copies[seen - 2]
        old = sorted(set(heads[:seen - 1]))
        assert isinstance(out, Replay) and generated.shape == x.shape
        torch.testing.assert_close(generated, expected)  # samples of the VAE as it was when the task ended
        assert torch.equal(out.x, torch.cat([generated] * len(old)))
        assert out.head.tolist() == [h for h in old for _ in range(len(x))]
        logits = torch.cat([by_hand(previous, generated, h) for h in old])
        if temperature is None:
            assert out.target.dtype == torch.long and out.temperature == 1.0
            assert torch.equal(out.target, logits.argmax(1))
        else:
            assert out.target.dtype == torch.float32 and out.temperature == temperature
            torch.testing.assert_close(out.target, logits)
    # after_step trains the VAE on the batch, and from the second task on also on the generated samples
    steps = [(seen, x) for seen, x, _, _, _ in dgr.calls]
    generated = [g for seen, _, _, g, _ in dgr.calls if seen > 1]
    expected_inputs = [s for seen, x in steps for s in ([(seen, x)] + ([(seen, None)] if seen > 1 else []))]
    assert len(dgr.vae_inputs) == len(expected_inputs)
    replayed = iter(generated)
    for (seen, x), (got_seen, got) in zip(expected_inputs, dgr.vae_inputs, strict=True):
        assert got_seen == seen and torch.equal(got, x if x is not None else next(replayed))
    # the VAE learned during each task; the frozen copies do not require gradients and did not move
    assert not torch.equal(params(dgr.starts[0]), params(dgr.copies[0][1]))
    assert not torch.equal(params(dgr.copies[0][1]), params(dgr.copies[1][1]))
    assert not torch.equal(params(dgr.copies[1][1]), params(dgr.copies[2][1]))
    assert torch.equal(params(dgr.copies[2][1]), params(dgr.vae))  # no top-up without iterations
    assert torch.equal(params(dgr.previous_vae), params(dgr.copies[2][1]))
    assert torch.equal(params(dgr.previous), params(dgr.copies[2][0]))
    assert not any(p.requires_grad for p in (*dgr.previous_vae.parameters(), *dgr.previous.parameters()))
    assert all(p.requires_grad for p in dgr.vae.parameters())


@pytest.mark.parametrize("temperature", [None, 2.0])
def test_generative_replay_labels_with_the_previous_classifier_not_the_current_one(temperature):
    tasks, dgr = tasks_with_heads([0, 0]), GenerativeReplay(temperature=temperature)
    previous, current = small_model(), small_model()
    with torch.no_grad():
        previous.fc4.bias.copy_(torch.tensor([0.0, 0.0, 0.0, 100.0]))  # the previous model says 3
        current.fc4.bias.copy_(torch.tensor([0.0, 100.0, 0.0, 0.0]))   # the current one says 1
    dgr.previous, dgr.previous_vae = previous.requires_grad_(False), small_vae().requires_grad_(False)
    out = dgr.replay(current, tasks[1].x_train[:5], tasks)
    if temperature is None:
        assert out.target.tolist() == [3] * 5
    else:
        torch.testing.assert_close(out.target, by_hand(previous, out.x, 0))
        assert bool((out.target[:, 3] > 90).all())


# ---------------------------------------------------------------- the generator's own batches

def test_generator_iterations_top_the_vae_up_on_the_tasks_own_data():
    """iterations=7 with the classifier's 3 batches of 4: after them the VAE trains 4 more batches per task, one
    shuffled pass over the task's 16 images, replaying its predecessor from task 2 on; the last task's too (the
    loop calls after_task after every task), though nothing samples that VAE. VAE losses per task: 7 (no replay
    yet), 2 x 7, 2 x 7."""
    tasks = tasks_with_heads([0, 0, 0])
    dgr = ProbedDGR(iterations=7, batch_size=4)
    dgr.vae = small_vae()
    fit(small_model(), tasks, dgr, epochs=1, batch_size=4, lr=1e-2, progress=False, iterations=3)
    per_task = [[x for seen, x in dgr.vae_inputs if seen == k + 1] for k in range(3)]
    assert [len(inputs) for inputs in per_task] == [7, 14, 14]
    for k, inputs in enumerate(per_task):
        classifier_batches = [x for seen, x, *_ in dgr.calls if seen == k + 1]
        real = inputs if k == 0 else inputs[0::2]  # from task 2 on each step is (real, generated)
        assert all(torch.equal(a, b) for a, b in zip(real[:3], classifier_batches, strict=True))
        extra = torch.cat(real[3:])
        rows = [int((tasks[k].x_train == row).all(1).nonzero()) for row in extra]  # each a row of this task's
        assert sorted(rows) == list(range(16))  # one shuffled pass: every image once
        assert rows != list(range(16))
        if k > 0:
            assert all(g.shape == (4, 8) and not any(torch.equal(g, x) for x in real) for g in inputs[1::2])


def test_without_generator_iterations_the_vae_trains_only_alongside_the_classifier():
    tasks = tasks_with_heads([0, 0])
    dgr = ProbedDGR()
    dgr.vae = small_vae()
    fit(small_model(), tasks, dgr, epochs=1, batch_size=4, lr=1e-2, progress=False, iterations=3)
    assert [sum(seen == k + 1 for seen, _ in dgr.vae_inputs) for k in range(2)] == [3, 6]


def test_the_runs_generator_settings_build_the_vae():
    config = split_config("class", "grading", generator_iterations=9, generator_lr=0.02, generator_hidden=(7, 6),
                          generator_latent=3)
    dgr = make_strategy("dgr", config)
    dgr.before_task(small_model(), tasks_with_heads([0]))
    encoder = [m for m in dgr.vae.encoder.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in encoder] == [(8, 7), (7, 6)]
    assert dgr.vae.latent == dgr.vae.mu.out_features == 3 and dgr.vae.decoder[-1].out_features == 8
    assert dgr.optimizer.param_groups[0]["lr"] == 0.02 and dgr.iterations == 9
    assert dgr.batch_size == config.batch_size


@pytest.mark.parametrize("overrides, message", [
    (dict(generator_iterations=4), "generator-iterations must be at least 5, the classifier's batches per task"),
    (dict(generator_iterations=0, iterations=None), "generator-iterations must be at least 1; got 0"),
    (dict(generator_lr=0.0), "generator-lr must be positive, got 0.0"),
    (dict(generator_hidden=()), "generator-hidden must be one or more layer sizes"),
    (dict(generator_hidden=(400, 0)), "generator-hidden must be one or more layer sizes"),
    (dict(generator_latent=0), "generator-latent must be at least 1 unit, got 0"),
])
def test_bad_generator_settings_are_one_line_errors(overrides, message):
    with pytest.raises(ValueError, match=message):
        split_config("class", "grading", **overrides)  # grading: 5 batches per task
