"""Lesson 2's blanks on their fixture: how each is called, what of its behaviour is recorded, and what a
record that differs says about the answer.

A function blank returns a value; a strategy blank is a class, so it is exercised instead: built,
driven through the hooks in the order train.fit calls them on a scripted stream of three small
tasks, and what it hands to training is recorded (the replayed samples, the projected gradient).
Every exercise returns {entry: tensor}, the form the self-checks and the grader compare, and
records only what does not depend on a random draw (how many samples of each class a buffer keeps,
whether every stored sample is drawn sooner or later, at which rate a reservoir keeps each item), so
that a right answer matches the reference exactly whatever its random numbers.

The fixture (float64) is drawn from a seed, its sizes too (the published fixture's seed is
FIXTURE_SEED): a 6-5-4-2 MLP with 3 heads (task-IL: one per task), 3 tasks whose labels 0 and 1
come in unequal numbers, in a shuffled order; see replay_fixture.
"""
import torch
import torch.nn.functional as F

from ..data import Task
from ..model import MLP
from ..replay import flat_gradient, memory_gradient, set_flat_gradient
from .fixtures import FIXTURE_SEED

IN, HIDDEN, OUT, TASKS = 6, (5, 4), 2, 3
CLASSES = 5             # distillation_loss's logits [4, 5]: C differs from N = 4 and from every T and T^2 below
TEMPERATURES = (1.5, 2.5, 3.5)  # never 2, the training default: an answer with 2 written in must fail
BIG_DRAW = 200          # far more than the memory: a draw without replacement of more than it holds is all of it
SMALL_DRAWS = 200       # draws of 4 from at most 24 stored samples: a uniform sampler draws each (p > 1 - 1e-14)
RESERVOIR_CALLS = 1000  # calls per reservoir check: each position's keep rate to about +-0.016, rules 14 errors apart
SIZES = (f"a {IN}-{'-'.join(map(str, HIDDEN))}-{OUT} MLP with {TASKS} heads, {TASKS} tasks of 9-26 samples x "
         f"[n, {IN}] (labels 0 and 1, head k for task k)")


def replay_fixture(seed=FIXTURE_SEED):
    """Small float64 inputs of lesson 2's blanks, drawn from `seed` (sizes too, within the ranges given):

    model: MLP 6 -> 5 -> 4 -> 2 with 3 heads; budget: 12 or 24, the memory's size (after tasks 1, 2 and 3
    there are 2, 4 and 6 classes, so each class's share is a whole number); tasks: 3 data.Task, task k with
    x_train [n, 6] and y_train of budget/2 + 1..3 zeros and 2..budget/2 - 1 ones in a shuffled order (label 0
    outnumbers label 1; the ones, above or below each later quota, make the memory's counts differ from seed to
    seed), head k; x: [4, 6] a training batch; step: {parameter name: tensor}, a change of the
    parameters (what training between two tasks did); gradients: {parameter name: tensor}, a batch's
    gradient; logits, teacher_logits: [4, 5]; temperature: 1.5, 2.5 or 3.5; features: [20, 4]; m: 20 (all of
    them: the order is what herding decides; with 20, no two typical mistakes give the same order);
    reservoir_budget: 3 or 4, the reservoir's size; stream_seed: the seed of the generator passed to
    reservoir_slots.
    """
    g = torch.Generator().manual_seed(seed)

    def randn(*shape, scale=1.0):
        return scale * torch.randn(*shape, generator=g, dtype=torch.float64)

    def pick(options):
        return options[int(torch.randint(len(options), (1,), generator=g))]

    scale = pick((1, 2))
    budget = 12 * scale
    model = MLP(out_features=OUT, heads=TASKS, hidden=HIDDEN, in_features=IN).double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(randn(*p.shape))
    tasks = []
    for k in range(TASKS):
        zeros, ones = budget // 2 + pick((1, 2, 3)), pick(range(2, budget // 2))
        y = torch.tensor([0] * zeros + [1] * ones)[torch.randperm(zeros + ones, generator=g)]
        if not y[:len(y) // 2].any():  # few ones can all land late: one comes first, so the stream is never sorted
            first = int(y.nonzero()[0])
            y[0], y[first] = 1, 0
        tasks.append(Task(f"task {k + 1}", randn(len(y), IN), y, randn(4, IN), torch.tensor([0, 1, 0, 1]),
                          head=k, classes=(2 * k, 2 * k + 1)))
    return dict(model=model, tasks=tasks, x=randn(4, IN), budget=budget,
                step={n: randn(*p.shape, scale=0.5) for n, p in model.named_parameters()},
                gradients={n: randn(*p.shape) for n, p in model.named_parameters()},
                logits=randn(4, CLASSES, scale=2.0), teacher_logits=randn(4, CLASSES, scale=2.0),
                temperature=pick(TEMPERATURES), features=randn(20, 4), m=20,
                reservoir_budget=pick((3, 4)), stream_seed=int(torch.randint(2 ** 31, (1,), generator=g)))


def trained(model, step):
    """What training between two tasks does to the model, in place: every parameter moves by `step`."""
    with torch.no_grad():
        for n, p in model.named_parameters():
            p.add_(step[n])


def heads_of(replay):
    head = replay.head
    return head.long().flatten() if isinstance(head, torch.Tensor) else torch.full((len(replay.x),), int(head))


class AnswerFormError(Exception):
    """The answer returned something of the wrong form, or failed where the exercise can say why; the
    message (after the blank's name) says what."""


# ---- distillation_loss -----------------------------------------------------------------------

def distillation_gradient(function, inputs):
    """d loss / d logits, [4, 5]: what training gets from the distillation term. (The loss's value is
    not compared: a KL divergence differs from the cross-entropy by the teacher's entropy, a constant.)"""
    logits = inputs["logits"].clone().requires_grad_(True)
    loss = function(logits, inputs["teacher_logits"], inputs["temperature"])
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        kind = f"a tensor of shape {list(loss.shape)}" if isinstance(loss, torch.Tensor) else type(loss).__name__
        raise AnswerFormError(f"must return the loss as one number in a tensor (shape []), got {kind}")
    if not loss.requires_grad:
        raise AnswerFormError("returns a loss that does not depend on `logits` (detached, or computed without them): "
                              "training would get no gradient from it")
    return {"gradient": torch.autograd.grad(loss.sum(), logits)[0]}


def distillation_factors(inputs):
    """What a gradient off by a constant factor says: (factor, meaning)."""
    t, n, c = inputs["temperature"], len(inputs["logits"]), inputs["logits"].shape[1]
    return [(1 / t ** 2, f"got = expected / T^2 (T = {t:g}): the factor T^2 is missing"),
            (1 / t, f"got = expected / T (T = {t:g}): the loss is multiplied by T, not T^2"),
            (t ** 2, f"got = T^2 x expected (T = {t:g}): T^2 is applied twice"),
            (n, f"got = {n} x expected, N = {n} the number of samples: take the mean over the batch, not the sum"),
            (1 / c, f"got = expected / {c}, C = {c} the number of classes: F.kl_div's default reduction='mean' "
                    "averages over all N x C entries; use reduction='batchmean' (or sum over classes, mean over "
                    "samples)")]


# ---- herding_selection -----------------------------------------------------------------------

def herding_indices(function, inputs):
    """The chosen indices in the order chosen, [m]."""
    chosen = function(inputs["features"], inputs["m"])
    if not isinstance(chosen, torch.Tensor) or chosen.is_floating_point() or chosen.dim() != 1:
        kind = (f"a {chosen.dtype} tensor of shape {list(chosen.shape)}" if isinstance(chosen, torch.Tensor)
                else type(chosen).__name__)
        raise AnswerFormError(f"must return a LongTensor [m] of indices (e.g. torch.tensor(chosen)), got {kind}")
    return {"indices": chosen.double()}


# ---- LwF -------------------------------------------------------------------------------------

TARGETS_ARE_TODAYS = ("the targets are the model's outputs of today, not those of the last task's end: either "
                      "after_task keeps the model itself (it goes on training) instead of frozen_copy(model), or "
                      "replay computes them with `model` instead of the old one, self.previous")

def lwf_targets(cls, inputs):
    """LwF trained on three tasks (the model moving by `step` during each): what it replays in task 1
    (`first_task`: 1 if anything), and in task 3 the soft target of every (earlier head, sample of x),
    [3 heads, 4, 2] (zero where nothing is replayed), which of them are replayed (`replayed`), the
    temperature and `unknown`: replayed inputs that are not the batch's."""
    model, tasks, x = inputs["model"], inputs["tasks"], inputs["x"]
    strategy = cls(temperature=inputs["temperature"])
    strategy.before_task(model, tasks[:1])
    try:
        first = strategy.replay(model, x, tasks[:1])
    except NotImplementedError:  # not written yet: the check says so
        raise
    except Exception as e:  # typically an empty reshape: there is no earlier head to distil through
        why = (str(e).splitlines() or [""])[0][:80]
        raise AnswerFormError(f"replay raised {type(e).__name__} during the first task ({why}); there is no earlier "
                              "task then, so nothing to distil: keep the old model in after_task (not before_task) "
                              "and return None while there is none (self.previous is None)") from None
    for k in (1, 2):
        trained(model, inputs["step"])
        strategy.after_task(model, tasks[:k])
        strategy.before_task(model, tasks[:k + 1])
    trained(model, inputs["step"])
    replay = strategy.replay(model, x, tasks)
    targets = torch.zeros(TASKS, len(x), OUT, dtype=x.dtype, device=x.device)
    replayed, unknown = torch.zeros(TASKS, len(x), dtype=x.dtype, device=x.device), 0
    if replay is not None:
        soft = replay.target if replay.target.dim() == 2 else F.one_hot(replay.target.long(), OUT)
        for row, head, target in zip(replay.x, heads_of(replay), soft, strict=False):
            same = (x == row).all(1).nonzero().flatten()
            if not len(same):
                unknown += 1
                continue
            targets[head, same[0]], replayed[head, same[0]] = target.detach().to(x.dtype), 1
    return {"first_task": torch.tensor([float(first is not None)]), "targets": targets, "replayed": replayed,
            "temperature": torch.tensor([float(getattr(replay, "temperature", 0.0))]),
            "unknown": torch.tensor([float(unknown)])}


# ---- ExperienceReplay ------------------------------------------------------------------------

def stored_counts(replay, tasks):
    """[tasks, labels]: the distinct replayed samples that are a training sample of that task with that
    label and that task's head; and how many replayed samples carry another head, another label, or are
    no task's training sample at all."""
    counts, seen = torch.zeros(TASKS, OUT, dtype=torch.float64), set()
    another_head = another_label = strangers = 0
    if replay is None:
        return counts, (another_head, another_label, strangers)
    for row, label, head in zip(replay.x, replay.target, heads_of(replay), strict=False):
        where = [(k, i) for k, t in enumerate(tasks) for i in (t.x_train == row).all(1).nonzero().flatten().tolist()]
        if not where:
            strangers += 1
            continue
        k, i = where[0]
        if int(tasks[k].y_train[i]) != int(label):
            another_label += 1
        elif tasks[k].head != int(head):
            another_head += 1
        elif (k, i) not in seen:
            seen.add((k, i))
            counts[k, int(label)] += 1
    return counts, (another_head, another_label, strangers)


def buffer_contents(cls, inputs):
    """Experience replay on three tasks: whether it replays during task 1; after each task, the stored
    samples per (task, label) that a draw of 200 shows (a draw without replacement of more than the memory
    holds is all of it); replayed samples with another head, another label, or that were never a training
    sample; the sizes of a draw for a batch of 4 and of 200; whether the draw of 200 repeats a sample; and
    whether 60 draws for a batch of 4 bring up every stored sample (a uniform draw does)."""
    model, tasks, x = inputs["model"], inputs["tasks"], inputs["x"]
    big = torch.zeros(BIG_DRAW, IN, dtype=x.dtype, device=x.device)
    strategy = cls(budget=inputs["budget"])
    strategy.before_task(model, tasks[:1])
    first = strategy.replay(model, x, tasks[:1])
    record, wrong = {"first_task": torch.tensor([float(first is not None)])}, torch.zeros(3, dtype=torch.float64)
    for k in (1, 2, 3):
        strategy.after_task(model, tasks[:k])
        if k < TASKS:
            strategy.before_task(model, tasks[:k + 1])
        everything = strategy.replay(model, big, tasks[:k + 1])
        record[f"memory_after_task_{k}"], stray = stored_counts(everything, tasks)
        wrong += torch.tensor(stray, dtype=torch.float64)
    drawn = everything.x if everything is not None else big[:0]
    small = [strategy.replay(model, x, tasks) for _ in range(SMALL_DRAWS)]
    came_up = {tuple(row.tolist()) for r in small if r is not None for row in r.x}
    stored = {tuple(row.tolist()) for row in drawn}
    record |= {"replayed_with_another_head": wrong[:1], "replayed_with_another_label": wrong[1:2],
               "never_stored": wrong[2:],
               "draw_sizes": torch.tensor([float(len(small[0].x) if small[0] is not None else 0), float(len(drawn))]),
               "repeats": torch.tensor([float(len(stored) < len(drawn))]),
               "every_sample_drawn": torch.tensor([float(bool(stored) and stored <= came_up)])}
    return record


# What a buffer's record that differs says, each a message's first words (blanks.py names the typical mistakes by them)
BUFFER = {
    "first task": "it replays during the first task",
    "another head": "stored samples are replayed through another head than their own task's",
    "another label": "stored samples are replayed with another label than their own",
    "strangers": "it replays inputs that are no task's training samples",
    "repeats": "a draw repeats samples (sampling with replacement)",
    "draw size": "a draw returns the wrong number of samples",
    "not random": "sample(n) does not draw at random",
    "latest only": "the memory keeps the latest task only",
    "not stored": "the task that just ended is not stored",
    "not shrunk": "the classes stored earlier are not shrunk",
    "never replayed": "a stored class never comes up in a draw",
    "not balanced": "the memory is not class-balanced",
    "over budget": "the memory holds more than its budget",
}


def diagnose_buffer(got, expected, inputs):
    """What a buffer's record that differs says about the answer, in the order a reader should fix it;
    None when it says nothing the per-entry comparison does not."""
    budget = inputs["budget"]
    if got["first_task"].item():
        return (f"{BUFFER['first task']}: the memory must hold nothing until the first task ends, so store a task's "
                "samples in after_task (tasks[-1] is the task that just ended), not in before_task")
    if got["replayed_with_another_head"].item():
        return (f"{BUFFER['another head']} (the current one?): keep each sample's head when you store it "
                "(tasks[-1].head) and replay it with that head; in task-IL a stored 3 is answered by task 2's head")
    if got["replayed_with_another_label"].item():
        return f"{BUFFER['another label']}: store each sample's y with its x"
    if got["never_stored"].item():
        return f"{BUFFER['strangers']}: store (and replay) the tasks' own x_train rows"
    small, large = (int(v) for v in got["draw_sizes"])  # a draw of 200 holds the whole memory, M = large
    if got["repeats"].item() and large == BIG_DRAW:
        return (f"{BUFFER['repeats']}: a draw of {BIG_DRAW} returned {BIG_DRAW} samples although fewer are stored; "
                "draw min(n, M) distinct samples, e.g. torch.randperm(M)[:n]")
    if small != min(4, large):
        whole = " (the whole memory)" if small == large else ""
        return (f"{BUFFER['draw size']}: {small} for a batch of 4{whole} from the {large} stored; sample(n) draws "
                "min(n, M) of the M stored, so that the replayed batch is as large as the current one")
    for k in (1, 2, 3):
        have, want = got[f"memory_after_task_{k}"], expected[f"memory_after_task_{k}"]
        if torch.equal(have, want):
            continue
        share = budget // (2 * k)
        where = f"after task {k} (budget {budget}, {2 * k} classes: at most {share} per class)"
        if k > 1 and not have[:k - 1].any():
            return f"{BUFFER['latest only']} {where}: add each finished task's samples to what is stored"
        if not have[k - 1].any():
            return (f"{BUFFER['not stored']} {where}: after_task stores tasks[-1], the task that just ended "
                    "(tasks[0] is the first task)")
        if k > 1 and (have[:k - 1] > share).any():
            return (f"{BUFFER['not shrunk']} {where}: when new classes arrive every class keeps only the first "
                    f"budget // classes seen of its samples (it holds {int(have.sum())} in all)")
        missing = [(j + 1, label) for j in range(k) for label in range(OUT) if want[j, label] and not have[j, label]]
        if missing:
            task, label = missing[0]
            return (f"{BUFFER['never replayed']} {where}: none of task {task}'s label {label} is replayed although it "
                    "must be stored; store every label of a finished task, and let sample(n) draw from all of them")
        if not torch.equal(have[k - 1], want[k - 1]):
            (n0, n1), (w0, w1) = have[k - 1].int().tolist(), want[k - 1].int().tolist()
            return (f"{BUFFER['not balanced']} {where}: it holds {n0} of task {k}'s label 0 and {n1} of its label 1, "
                    f"expected {w0} and {w1}: each label keeps min(budget // classes seen, its samples), the new "
                    "classes counted, chosen among that label's own samples (the stream is not balanced: its first "
                    "samples, or a draw from the whole task, keep the labels in the stream's proportions)")
        if have.sum() > budget:
            return f"{BUFFER['over budget']} {where}: it holds {int(have.sum())}"
    if not got["every_sample_drawn"].item():
        return (f"{BUFFER['not random']}: in {SMALL_DRAWS} draws of 4 some stored samples never came up (the first n "
                "stored? a generator seeded anew in every call?); draw uniformly, e.g. torch.randperm(M)[:n]")
    if got["repeats"].item():
        return (f"{BUFFER['repeats']}, or a sample is stored twice: draw min(n, M) distinct samples of a memory that "
                "holds each sample once")
    return None


# ---- AGEM ------------------------------------------------------------------------------------

def projected_gradients(cls, inputs):
    """A-GEM after task 1, its memory large enough to hold all of task 1: the gradient after
    adjust_gradients when the batch's gradient raises the memory's loss (`conflicting`, [P] flat) and when
    it lowers it (`agreeing`); `replays`: 1 if it also trains on the memory (A-GEM only projects)."""
    model, tasks, x = inputs["model"], inputs["tasks"], inputs["x"]
    task = tasks[0]
    strategy = cls(budget=2 * len(task.y_train))  # each class's share is at least its whole task-1 count
    strategy.before_task(model, tasks[:1])
    strategy.after_task(model, tasks[:1])
    strategy.before_task(model, tasks[:2])
    reference = memory_gradient(model, task.x_train, task.y_train, task.head)  # all of task 1 is stored
    g = torch.cat([inputs["gradients"][n].flatten() for n, _ in model.named_parameters()])
    g = g if g @ reference < 0 else -g
    record = {"replays": torch.tensor([float(strategy.replay(model, x, tasks[:2]) is not None)])}
    for name, gradient in (("conflicting", g), ("agreeing", -g)):
        set_flat_gradient(model, gradient)
        strategy.adjust_gradients(model, tasks[:2])
        record[name] = flat_gradient(model).detach().clone()
    return record


# ---- reservoir_slots -------------------------------------------------------------------------

def keep_rules(budget, n):
    """The rules the exercise tells apart, in order: (name, [n] probability that each item of one call of n
    items, made when the memory has just filled (seen = budget), is kept). Algorithm R first: item s is kept
    with probability budget / (s + 1); then its typical mistakes."""
    s = budget + torch.arange(n, dtype=torch.float64)
    return [("budget / (s + 1)", budget / (s + 1)),
            ("budget / s", budget / s),  # j drawn from 0..s-1: off by one
            ("budget / (seen + 1) for every item of the call", torch.full((n,), budget / (budget + 1.0))),
            ("budget / (seen + n) for every item of the call", torch.full((n,), budget / (budget + float(n)))),
            ("always", torch.ones(n, dtype=torch.float64)),
            ("never", torch.zeros(n, dtype=torch.float64))]


def close(observed, probability, calls):
    """Whether keep rates observed over `calls` calls follow `probability`, position by position: within 6
    standard errors (a floor of one call's worth keeps a rule of certainties from demanding exactness)."""
    error = ((probability * (1 - probability)).clamp(min=1.0 / calls) / calls).sqrt()
    return bool(((observed - probability).abs() <= 6 * error).all())


def reservoir_record(function, inputs):
    """reservoir_slots called as training calls it: `fills_in_order` (1: while the memory is not full, item s
    goes to slot s), `slots_in_range` (1: every slot is -1 or in 0..budget-1), `drops_late_items` (1: after a
    million items nearly every new one is dropped, -1), and over 1,000 calls of 2 x budget items made when the
    memory has just filled: `keep_rule`, which of keep_rules the rate at which each position is kept follows
    (0: Algorithm R; -1: none), `slots_uniform` (1: at every position a kept item goes to each slot equally
    often) and `same_every_call` (1: every call returns the same slots)."""
    budget, calls = inputs["reservoir_budget"], RESERVOIR_CALLS
    generator = torch.Generator().manual_seed(inputs["stream_seed"])

    def slots(seen, n):
        got = function(seen, n, budget, generator)
        if not isinstance(got, torch.Tensor) or got.is_floating_point() or tuple(got.shape) != (n,):
            kind = (f"a {got.dtype} tensor of shape {list(got.shape)}" if isinstance(got, torch.Tensor)
                    else type(got).__name__)
            raise AnswerFormError(f"must return a LongTensor [n] of slots (-1: dropped), got {kind} for n = {n}")
        return got.detach().cpu().long()

    filling, late = slots(0, budget), slots(10 ** 6, 50)  # late: each is kept with probability budget / 1e6
    n = 2 * budget
    drawn = torch.stack([slots(budget, n) for _ in range(calls)])  # [calls, n]
    every = torch.cat([filling, late, drawn.flatten(), slots(1, 2)])
    in_range = bool(((every >= -1) & (every < budget)).all())
    fills = filling.tolist() == list(range(budget)) and every[-2:].tolist() == [1, 2]
    late = int((late == -1).sum()) >= 45
    kept = (drawn >= 0).double().mean(0)
    rule = next((i for i, (_, p) in enumerate(keep_rules(budget, n)) if close(kept, p, calls)), -1)
    uniform = True
    for position in drawn.T:
        landed = position[position >= 0]
        if (landed >= budget).any():
            uniform = False
            break
        counts = torch.bincount(landed, minlength=budget).double()
        share = len(landed) / budget
        uniform = uniform and bool(((counts - share).abs() <= 6 * (share * (1 - 1 / budget)) ** 0.5 + 1).all())
    same = bool((drawn == drawn[0]).all())
    return {"fills_in_order": torch.tensor([float(fills)]), "slots_in_range": torch.tensor([float(in_range)]),
            "drops_late_items": torch.tensor([float(late)]), "keep_rule": torch.tensor([float(rule)]),
            "slots_uniform": torch.tensor([float(uniform)]), "same_every_call": torch.tensor([float(same)])}


# What each recorded entry means, for a message that says it in words when no typical mistake matches
ENTRIES = {
    "distillation_loss": {"gradient": "the gradient of your loss with respect to `logits`, [4, 5], what training "
                                      "gets from the distillation term"},
    "LwF": {"first_task": "whether anything is replayed during the first task (expected: nothing, 0)",
            "targets": "the soft target replayed for each (earlier head, sample of x) in task 3: the old model's "
                       "logits through that head",
            "replayed": "which (earlier head, sample of x) pairs are replayed in task 3: every earlier head, "
                        "every sample",
            "temperature": "the temperature of the replayed Replay (the strategy's own, self.temperature)",
            "unknown": "replayed inputs that are not the current batch's"},
    "ExperienceReplay": {f"memory_after_task_{k}": f"how many samples of each task (rows) and label (columns) the "
                                                   f"memory holds after task {k}" for k in (1, 2, 3)}
    | {"draw_sizes": "the sizes of a draw for a batch of 4 and for one of 200 (min(n, M))",
       "repeats": "whether a draw repeats a sample", "every_sample_drawn": "whether every stored sample comes up "
       f"in {SMALL_DRAWS} draws of 4", "first_task": "whether anything is replayed during the first task",
       "replayed_with_another_head": "replayed samples with another head than their task's",
       "replayed_with_another_label": "replayed samples with another label than their own",
       "never_stored": "replayed inputs that are no training sample"},
    "AGEM": {"conflicting": "the gradient after adjust_gradients when g . g_ref < 0 (it must be projected)",
             "agreeing": "the gradient after adjust_gradients when g . g_ref >= 0 (it must be kept)",
             "replays": "whether A-GEM also trains on the memory (it must not: replay returns None)"},
    "herding_selection": {"indices": "the indices chosen, in the order chosen"},
    "reservoir_slots": {"fills_in_order": "whether item s goes to slot s while the memory is not full",
                        "slots_in_range": "whether every slot is -1 or in 0..budget-1",
                        "drops_late_items": "whether, after a million items, nearly every new item is dropped (-1)",
                        "keep_rule": "which rule the rate at which item s is kept follows (0: budget / (s + 1))",
                        "slots_uniform": "whether a kept item goes to each slot equally often",
                        "same_every_call": "whether every call returns the same slots"},
}
