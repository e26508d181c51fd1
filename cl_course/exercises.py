"""Lesson 2's blanks on their fixture: how each is called, and what of its behaviour is recorded.

A function blank returns a value; a strategy blank is a class, so it is exercised instead: built,
driven through the hooks in the order train.fit calls them on a scripted stream of three small
tasks, and what it hands to training is recorded (the replayed samples, the projected gradient).
Every exercise returns {entry: tensor}, the form the self-checks and the grader compare, and
records only what does not depend on a random draw (which samples a buffer keeps, say), so that a
right answer matches the reference exactly whatever its random numbers.

The fixture (float64): a 6-5-4-2 MLP with 3 heads (task-IL: one per task), 3 tasks of 6 training
samples each (labels 0, 0, 0, 1, 1, 1 in this order, head k for task k); see replay_fixture.
"""
import torch
import torch.nn.functional as F

from .data import Task
from .fixtures import FIXTURE_SEED
from .model import MLP
from .replay import flat_gradient, memory_gradient, set_flat_gradient

IN, HIDDEN, OUT, TASKS, PER_LABEL = 6, (5, 4), 2, 3, 3
ER_PER_CLASS = 2     # of the 3 samples of each label: the buffer must choose
AGEM_PER_CLASS = 3   # all of them: A-GEM's reference gradient is then the whole memory's, whatever the draw
BIG_DRAW = 200       # far more than the 8 stored samples: a draw with replacement misses one with p ~ 1e-11
SIZES = (f"a {IN}-{'-'.join(map(str, HIDDEN))}-{OUT} MLP with {TASKS} heads, {TASKS} tasks of {2 * PER_LABEL} "
         f"samples x [6, {IN}] (labels 0 and 1, head k for task k)")


def replay_fixture(seed=FIXTURE_SEED):
    """Small float64 inputs of lesson 2's blanks, drawn from `seed`:

    model: MLP 6 -> 5 -> 4 -> 2 with 3 heads; tasks: 3 data.Task, x_train [6, 6], y_train [0,0,0,1,1,1],
    head k; x: [4, 6] a training batch; step: {parameter name: tensor}, a change of the parameters
    (what training between two tasks did); gradients: {parameter name: tensor}, a batch's gradient;
    logits, teacher_logits: [4, 3]; temperature: 2.0; features: [10, 4]; m: 10 (all of them: the order is
    what herding decides).
    """
    g = torch.Generator().manual_seed(seed)

    def randn(*shape, scale=1.0):
        return scale * torch.randn(*shape, generator=g, dtype=torch.float64)

    model = MLP(out_features=OUT, heads=TASKS, hidden=HIDDEN, in_features=IN).double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(randn(*p.shape))
    y = torch.tensor([0] * PER_LABEL + [1] * PER_LABEL)
    tasks = [Task(f"task {k + 1}", randn(len(y), IN), y.clone(), randn(4, IN), torch.tensor([0, 1, 0, 1]),
                  head=k, classes=(2 * k, 2 * k + 1)) for k in range(TASKS)]
    return dict(model=model, tasks=tasks, x=randn(4, IN),
                step={n: randn(*p.shape, scale=0.5) for n, p in model.named_parameters()},
                gradients={n: randn(*p.shape) for n, p in model.named_parameters()},
                logits=randn(4, 3, scale=2.0), teacher_logits=randn(4, 3, scale=2.0), temperature=2.0,
                features=randn(10, 4), m=10)


def trained(model, step):
    """What training between two tasks does to the model, in place: every parameter moves by `step`."""
    with torch.no_grad():
        for n, p in model.named_parameters():
            p.add_(step[n])


def heads_of(replay):
    head = replay.head
    return head.long().flatten() if isinstance(head, torch.Tensor) else torch.full((len(replay.x),), int(head))


class AnswerFormError(Exception):
    """The answer returned something of the wrong form; the message (after the blank's name) says what."""


def distillation_gradient(function, inputs):
    """d loss / d logits, [4, 3]: what training gets from the distillation term. (The loss's value is
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


def herding_indices(function, inputs):
    """The chosen indices in the order chosen, [m]."""
    chosen = function(inputs["features"], inputs["m"])
    return {"indices": chosen.double() if isinstance(chosen, torch.Tensor) else chosen}


def lwf_targets(cls, inputs):
    """LwF trained on three tasks (the model moving by `step` during each): what it replays in task 1
    (`first_task`: 1 if anything), and in task 3 the soft target of every (earlier head, sample of x),
    [3 heads, 4, 2] (zero where nothing is replayed), which of them are replayed (`replayed`), the
    temperature and `unknown`: replayed inputs that are not the batch's."""
    model, tasks, x = inputs["model"], inputs["tasks"], inputs["x"]
    strategy = cls(temperature=inputs["temperature"])
    strategy.before_task(model, tasks[:1])
    first = strategy.replay(model, x, tasks[:1])
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


def stored_counts(replay, tasks):
    """[tasks, labels]: the distinct replayed samples that are a training sample of that task with that
    label and that task's head; and how many replayed samples are none of them."""
    counts, seen, strangers = torch.zeros(TASKS, OUT, dtype=torch.float64), set(), 0
    if replay is None:
        return counts, strangers
    for row, label, head in zip(replay.x, replay.target, heads_of(replay), strict=False):
        match = [(k, i) for k, t in enumerate(tasks) for i in (t.x_train == row).all(1).nonzero().flatten().tolist()
                 if int(t.y_train[i]) == int(label) and t.head == int(head)]
        if not match:
            strangers += 1
        elif match[0] not in seen:
            seen.add(match[0])
            counts[match[0][0], int(label)] += 1
    return counts, strangers


def buffer_contents(cls, inputs):
    """Experience replay on three tasks: whether it replays during task 1, the stored samples per (task,
    label) that a draw of 200 shows during task 2 and task 3 (a draw without replacement of more than the
    memory holds is all of it), replayed samples that were never stored, the sizes of a draw for a batch
    of 4 and of 200, and whether the draw of 200 repeats a sample."""
    model, tasks, x = inputs["model"], inputs["tasks"], inputs["x"]
    big = torch.zeros(BIG_DRAW, IN, dtype=x.dtype, device=x.device)
    strategy = cls(per_class=ER_PER_CLASS)
    strategy.before_task(model, tasks[:1])
    first = strategy.replay(model, x, tasks[:1])
    record = {"first_task": torch.tensor([float(first is not None)])}
    strangers = 0
    for k in (1, 2):
        strategy.after_task(model, tasks[:k])
        strategy.before_task(model, tasks[:k + 1])
        everything = strategy.replay(model, big, tasks[:k + 1])
        record[f"memory_in_task_{k + 1}"], stray = stored_counts(everything, tasks)
        strangers += stray
    small = strategy.replay(model, x, tasks)
    drawn = everything.x if everything is not None else big[:0]
    record |= {"never_stored": torch.tensor([float(strangers)]),
               "draw_sizes": torch.tensor([float(len(small.x) if small is not None else 0), float(len(drawn))]),
               "repeats": torch.tensor([float(len({tuple(row.tolist()) for row in drawn}) < len(drawn))])}
    return record


def projected_gradients(cls, inputs):
    """A-GEM after task 1: the gradient after adjust_gradients when the batch's gradient raises the
    memory's loss (`conflicting`, [P] flat) and when it lowers it (`agreeing`); `replays`: 1 if it also
    trains on the memory (A-GEM only projects)."""
    model, tasks, x = inputs["model"], inputs["tasks"], inputs["x"]
    strategy = cls(per_class=AGEM_PER_CLASS)
    strategy.before_task(model, tasks[:1])
    strategy.after_task(model, tasks[:1])
    strategy.before_task(model, tasks[:2])
    task = tasks[0]
    reference = memory_gradient(model, task.x_train, task.y_train, task.head)  # all of task 1 is stored
    g = torch.cat([inputs["gradients"][n].flatten() for n, _ in model.named_parameters()])
    g = g if g @ reference < 0 else -g
    record = {"replays": torch.tensor([float(strategy.replay(model, x, tasks[:2]) is not None)])}
    for name, gradient in (("conflicting", g), ("agreeing", -g)):
        set_flat_gradient(model, gradient)
        strategy.adjust_gradients(model, tasks[:2])
        record[name] = flat_gradient(model).detach().clone()
    return record
