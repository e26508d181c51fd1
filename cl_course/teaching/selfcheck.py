"""Self-checks for the notebook's blanks, cs231n style: run the student's function on a small
published fixture, print expected against got for every parameter, and name the likely mistake.

The expected values (and the values that typical wrong formulas give) are numbers stored in
selfcheck_values.json, written by `python -m grader.selfcheck_values` from the reference code. The
student edition of the package has no reference code, so the numbers are all it carries.
"""
import copy
import dataclasses
import json
import os
import re
import secrets
from importlib.resources import files

import torch

from . import context_exercises, exercises
from .blanks import BLANKS
from .fixtures import CLASSES, FIXTURE_SEED, HIDDEN, IN_FEATURES, SIZES
from .fixtures import fixture  # noqa: F401 (selfcheck.fixture is what the grader and tests call)

GRADING_SEED_VARIABLE = "CL_COURSE_GRADING_SEED"  # the autograder's secret fixture seed
RTOL, ATOL = 1e-5, 1e-9  # float64 fixture: float32 arithmetic in a student's code still passes


class ShownInOneLine:
    """A check's own error: IPython (Jupyter, Colab) shows its message alone, which says what to do, and not
    the check's frames in the course package."""

    def _render_traceback_(self):
        return [f"{type(self).__name__}: {self}"]


class SelfCheckError(ShownInOneLine, AssertionError):
    """A self-check failed; the message says where and, when it can tell, why."""


class NotWrittenError(ShownInOneLine, NotImplementedError):
    """What a check or training needs is not written yet (a function, a class, a quiz answer); the message
    says which, and where."""


PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep  # cl_course/: the library's frames too


def shown_from_your_code(error):
    """Make IPython show `error`, raised under a check, from the student's first frame on: the check's frames
    above it (selfcheck.py, blanks.py, exercises.py) say nothing about the mistake. Raised in the package
    itself (a call of the student's class or function that does not fit it, say), it shows from its last
    frame, that call."""
    frame = error.__traceback__
    while frame is not None and frame.tb_next is not None and frame.tb_frame.f_code.co_filename.startswith(PACKAGE):
        frame = frame.tb_next
    if frame is not None:
        def render():
            from IPython import get_ipython
            return get_ipython().InteractiveTB.structured_traceback(type(error), error, frame, tb_offset=0)
        error._render_traceback_ = render


class OneShotBatches:
    """The fixture's batches as training hands them over: an iterable that can be gone through once,
    like a generator. A second pass yields nothing (as a spent generator does) and is counted, so that
    call() can name it rather than let it show up as zeros or a division by zero."""

    def __init__(self, batches):
        self.batches, self.passes = list(batches), 0

    def __iter__(self):
        self.passes += 1
        return iter(self.batches if self.passes == 1 else ())

    def __repr__(self):
        return "<batches: a one-shot iterable of (x, y), as in training>"


SHAPE_ERROR = re.compile(r"shape|size|dimension|out of bounds", re.I)  # torch's words for a shape mismatch
ITERATES_TWICE = ("iterates over `batches` twice; training passes them once, as a generator: count the samples "
                  "in the same loop")


def sizes_hint(name):
    """The fixture's sizes, for a function that failed on a shape (typically: it assumed HW14's)."""
    if BLANKS[name].lesson == "lesson3":
        return f"{context_exercises.SIZES[name]}; do not hard-code sizes: use each tensor's own shape"
    if BLANKS[name].exercise is not None:
        return f"{exercises.SIZES}; do not hard-code 784, 10 or the batch size: use each tensor's own shape"
    if "batches" in BLANKS[name].arguments:
        return f"{SIZES}; do not hard-code 784 or 10: use x as given and the model's outputs"
    return (f"its tensors are shaped like the parameters of a {IN_FEATURES}-{'-'.join(map(str, HIDDEN))}-{CLASSES} "
            "MLP; do not hard-code 784 or 10: use each tensor's own shape")


IN_PLACE = {  # why an argument changed in place breaks training, and how to leave it alone
    "model": "training goes on from these parameters; compute gradients with torch.autograd.grad (or backward()) "
             "and leave the parameters as they are",
    "batches": "training uses the same x and y again; compute new tensors instead of changing them",
    "before": "the training code keeps these tensors (its snapshot of the parameters); compute new tensors: "
              "after[n] - before[n], not before[n] -= ... or .sub_()",
    "after": "the training code keeps these tensors: this step's `after` is the next step's `before`, so every later "
             "step would be wrong; compute new tensors: after[n] - before[n], not after[n] -= before[n] or .sub_()",
    "gradients": "these are the model's own p.grad; compute new tensors: gradients[n] - penalty_gradients[n], not "
                 "gradients[n] -= ... or .sub_()",
    "weight": "PackNet passes the layer's weights themselves: weight.abs_() would flip the network's signs; compute "
              "new tensors (weight.abs())",
    "e": "HAT passes its embedding's values themselves (e.detach() shares their memory): changing e changes the "
         "task's embedding; compute new tensors (s * e, not e.mul_(s))",
}


def changed_in_place(before, after):
    """Whether `after` (a tensor, a model, or dicts, lists and tuples of them) no longer equals `before`, beyond
    the rounding of a cast to float32 (model.float() on the float64 fixture is a no-op in training)."""
    if isinstance(before, torch.nn.Module):
        return changed_in_place(dict(before.named_parameters()), dict(after.named_parameters()))
    if isinstance(before, torch.Tensor):
        if before.device.type == "meta":  # no values to compare
            return False
        return before.shape != after.shape or not torch.allclose(
            after.detach().to(before.device, before.dtype), before.detach(), RTOL, ATOL)
    if isinstance(before, dict):
        return before.keys() != after.keys() or any(changed_in_place(before[k], after[k]) for k in before)
    if isinstance(before, (list, tuple)):
        return len(before) != len(after) or any(changed_in_place(b, a) for b, a in zip(before, after, strict=True))
    return before != after


def call(name, function, inputs):
    """function(*its arguments) on a deep copy of `inputs`, so that what it does to them cannot change what
    the next call sees. `batches` is passed as training passes it, a one-shot iterable (OneShotBatches).
    Raises SelfCheckError, naming the cause, when the function goes over `batches` twice, asks for its len()
    or an index, fails on a shape (HW14's sizes assumed), or changes an argument in place that training goes
    on using (only the blank's `updates`, such as si_path_step's path_integral, may be changed in place)."""
    blank = BLANKS[name]
    given = copy.deepcopy(inputs)
    batches = None
    if "batches" in given:
        batches = given["batches"] = OneShotBatches(given["batches"])

    def twice():
        return batches is not None and batches.passes > 1

    try:
        result = blank.run(function, given)
    except NotImplementedError:
        raise
    except exercises.AnswerFormError as e:
        raise SelfCheckError(f"{name} {e}") from None
    except Exception as e:
        if twice():
            raise SelfCheckError(f"{name} {ITERATES_TWICE}") from None
        first = (str(e).splitlines() or [""])[0]
        first = first if len(first) <= 100 else first[:97] + "..."
        if isinstance(e, TypeError) and OneShotBatches.__name__ in str(e):
            raise SelfCheckError(f"{name} uses len() or an index on `batches` ({first}); training passes them "
                                 "once, as a generator: loop over them once and count the samples in that "
                                 "loop") from None
        if isinstance(e, (RuntimeError, IndexError, ValueError)) and SHAPE_ERROR.search(str(e)):
            raise SelfCheckError(f"{name} fails on the fixture's sizes: {sizes_hint(name)} ({type(e).__name__}: "
                                 f"{first})") from None
        shown_from_your_code(e)
        raise
    if twice():
        raise SelfCheckError(f"{name} {ITERATES_TWICE}")
    # a function's arguments are training's own; a class's exercise drives it through training's hooks, which is
    # what changes its inputs
    if not isinstance(blank.reference, type):
        if batches is not None:
            given["batches"] = batches.batches
        for argument in blank.arguments:
            if argument not in blank.updates and changed_in_place(inputs[argument], given[argument]):
                may = f" (only {', '.join(blank.updates)} may be updated in place)" if blank.updates else ""
                why = IN_PLACE.get(argument, f"training goes on using these tensors; compute new ones ({argument}[n] "
                                             f"* 2, not {argument}[n] *= 2 or .mul_())")
                raise SelfCheckError(f"{name} changes `{argument}` in place{may}: {why}")
    return result


def result_values(name, function, inputs):
    """call()'s result as detached float64 tensors: the form results are compared in."""
    return {n: t.detach().double() for n, t in call(name, function, inputs).items()}


def fixture_dtype(device):
    """float64, except on Apple's MPS, which has no float64."""
    return torch.float32 if device.type == "mps" else torch.float64


def moved(value, device):
    """The fixture's inputs on `device`: tensors, dicts and lists of them, and the model."""
    if isinstance(value, torch.nn.Module):
        return value.to(device, fixture_dtype(device))
    if isinstance(value, torch.Tensor):
        return value.to(device, fixture_dtype(device)) if value.is_floating_point() else value.to(device)
    if isinstance(value, dict):
        return {k: moved(v, device) for k, v in value.items()}
    if dataclasses.is_dataclass(value):  # a data.Task
        return dataclasses.replace(value, **{f.name: moved(getattr(value, f.name), device)
                                             for f in dataclasses.fields(value)})
    if isinstance(value, (list, tuple)):
        return type(value)(moved(v, device) for v in value)
    return value


def stored_values():
    return json.loads(files("cl_course").joinpath("selfcheck_values.json").read_text())


def as_tensors(values):
    return {n: torch.tensor(v, dtype=torch.float64) for n, v in values.items()}


def problem_with_result(name, got, shapes, device=None):
    """A one-line description of what is wrong with the result's form (or, given the model's `device`,
    its place), or None."""
    whose = f"{name}'s result" if BLANKS[name].exercise is None else f"{name}'s record"
    if not isinstance(got, dict):
        return f"{name} must return a dict {{parameter name: tensor}}, got {type(got).__name__}"
    for n, shape in shapes.items():
        if n not in got:
            return f"{whose} has no entry {n!r}: return one tensor per model.named_parameters()"
        if not isinstance(got[n], torch.Tensor):
            return f"{whose}[{n!r}] is a {type(got[n]).__name__}, not a tensor"
        if tuple(got[n].shape) != shape:
            mine = " (the parameter's)" if BLANKS[name].exercise is None else ""
            return f"{whose}[{n!r}] has shape {list(got[n].shape)}, expected {list(shape)}{mine}"
        elsewhere = device is not None and (got[n].device.type != device.type
                                            or device.index not in (None, got[n].device.index))
        if elsewhere:
            return (f"{whose}[{n!r}] is on {got[n].device} but the model is on {device}: create tensors with "
                    "torch.zeros_like(p), or pass device=p.device, so that they live where the model does")
        if not torch.isfinite(got[n]).all():
            return f"{whose}[{n!r}] holds NaN or inf"
        if got[n].requires_grad:  # training would later backpropagate into it and fail
            return (f"{whose}[{n!r}] is still part of the autograd graph: compute it from gradients and "
                    "detached tensors (.detach(), or inside torch.no_grad())")
    return None


def matches(got, values):
    return all(torch.allclose(got[n].detach().double().cpu(), v, RTOL, ATOL) for n, v in values.items())


def constant_factor(got, expected):
    """c when got == c * expected for every parameter (c != 1), else None."""
    num = sum((got[n].detach().double().cpu() * e).sum() for n, e in expected.items())
    den = sum((e * e).sum() for e in expected.values())
    c = float(num / den) if den > 0 else 0.0
    if abs(c - 1) > 1e-3 and c != 0 and matches(got, {n: c * e for n, e in expected.items()}):
        return c
    return None


def counts(name, inputs):
    """{"samples": N, "batches": number of batches, "sizes": each batch's size} of a fixture's `batches`, for
    likely_mistake to name a factor of N or of the batch count; None for a blank that takes no batches."""
    if "batches" not in BLANKS[name].arguments:
        return None
    sizes = [len(x) for x, _ in inputs["batches"]]
    return {"samples": sum(sizes), "batches": len(sizes), "sizes": sizes}


def count_factor(c, counts):
    """What a constant factor c says about the normalisation, given the fixture's counts, or None."""
    if not counts:
        return None
    n, b = counts["samples"], counts["batches"]
    sizes = counts.get("sizes") or []
    ends = ((sizes[0], "first"), (sizes[-1], "last")) if sizes else ()
    guessed = [(n / (b * size), f"got = {n}/{b * size} x expected: divided by {b} batches x {size} samples (the "
                                f"{which} batch's size) = {b * size}, but the batches differ in size "
                                f"({', '.join(map(str, sizes))} here): count the samples as you go (N = {n})")
               for size, which in ends]
    named = guessed + [
        (n, f"got = {n} x expected, N = {n} the number of samples: divide by the number of samples (N); "
            "the result is a mean over samples, not a sum"),
        (1 / n, f"got = expected / {n}, 1/N with N = {n} the number of samples: the result is divided by N "
                "once too often (a mean-reduced loss is already divided by its batch's size)"),
        (n / b, f"got = {n}/{b} x expected, N / batches: the sum over samples is divided by the number of "
                f"batches ({b}); average over samples, not batches (divide by N = {n})"),
        (b, f"got = {b} x expected, the number of batches: average over samples, not batches (the batch "
            "count belongs in no formula here)"),
        (1 / b, f"got = expected / {b}, 1 / the number of batches: average over samples, not batches (divide by "
                f"N = {n} only)"),
    ]
    for factor, message in named:
        if abs(c / factor - 1) < 1e-3:
            return message
    return None


def likely_mistake(got, expected, mistakes, counts=None, factors=()):
    """What a wrong result most likely got wrong: the message of the first typical mistake whose values
    (`mistakes`: [(message, {name: tensor})]) it matches, or a sign or constant factor; else None.
    counts (from counts(name, inputs), None for blanks without batches) lets a factor equal to the number
    of samples or batches, or its inverse, be named as such; `factors` ([(factor, meaning)], a blank's own)
    likewise."""
    for message, values in mistakes:
        if matches(got, values):
            return message
    c = constant_factor(got, expected)
    if c is None:
        return None
    if abs(c + 1) < 1e-3:
        return "off by the sign: check the sign of each term"
    named = next((meaning for factor, meaning in factors if abs(c / factor - 1) < 1e-3), None)
    return count_factor(c, counts) or named or f"off by a constant factor (got = {c:.4g} x expected)"


def what_differs(name, got, expected, inputs, mistakes):
    """The hint after "... differ": what the blank's own diagnosis, a typical mistake or a constant factor
    says, else what the first differing entry means (an exercise's), else where the formula is."""
    blank = BLANKS[name]
    said = blank.diagnose(got, expected, inputs) if blank.diagnose else None
    said = said or likely_mistake(got, expected, mistakes, counts(name, inputs),
                                  blank.factors(inputs) if blank.factors else ())
    if said:
        return f"Likely mistake: {said}."
    meanings = (exercises.ENTRIES | context_exercises.ENTRIES).get(name)
    if not meanings:
        return "Compare with the formula in the markdown above."
    n = next(n for n, e in expected.items() if not matches({n: got[n]}, {n: e}))
    return (f"{n} is {meanings.get(n, 'an entry of the record')}: expected {fmt(expected[n], 8)}, got "
            f"{fmt(got[n].detach().double().cpu(), 8)}.")


def verdict(name, got, expected, variants, inputs, mistakes, rtol=RTOL, atol=ATOL):
    """([entries that differ], the hint): no entry when `got` matches the reference's `expected` or one of
    the blank's legitimate `variants` (their values, in the blank's order)."""
    def close(values):
        return {n for n, e in values.items() if not torch.allclose(got[n].detach().double().cpu(), e, rtol, atol)}
    wrong = [n for n in expected if n in close(expected)]
    if not wrong or any(not close(v) for v in variants):
        return [], None
    return wrong, what_differs(name, got, expected, inputs, mistakes)


def fmt(t, k=3):
    return "[" + ", ".join(f"{v:.4g}" for v in t.flatten()[:k].tolist()) + (", ...]" if t.numel() > k else "]")


def grading_seed():
    """The autograder's seed from $CL_COURSE_GRADING_SEED, else a fresh random one."""
    return int(os.environ.get(GRADING_SEED_VARIABLE) or secrets.randbelow(2**31))


def check(name, function, verbose=True, seed=None, device="cpu"):
    """Run `function` (the notebook's `name`) on the published fixture and compare it with the
    stored values. Prints a table; raises SelfCheckError saying what differs and the likely mistake.
    With a `seed` (hidden tests) the fixture is drawn from it and compared with the reference code.
    With a `device` (training does this before it starts) the fixture is on that device, and the
    result must be there too."""
    if name not in BLANKS:
        raise ValueError(f"no self-check called {name!r}; there are: {', '.join(BLANKS)}")
    device = torch.device(device)
    blank = BLANKS[name]
    what = "parameters" if blank.exercise is None else "entries"
    inputs = blank.fixture(FIXTURE_SEED if seed is None else seed)
    if seed is None:
        record = stored_values()[name]
        expected, variants = as_tensors(record["expected"]), [as_tensors(v) for v in record["variants"]]
        mistakes = [(m["message"], as_tensors(m["values"])) for m in record["mistakes"]]
    else:  # mistakes are named by their values on the published fixture only
        expected = result_values(name, blank.reference, inputs)
        variants, mistakes = [result_values(name, v, inputs) for v, _ in blank.variants], []
    try:
        got = call(name, function, moved(inputs, device))
    except NotImplementedError:
        raise NotWrittenError(f"{name} is not written yet: fill in its cell above, run it, then run this "
                              "check again") from None
    except RuntimeError as e:
        if device.type == "cpu" or "device" not in str(e):
            raise
        raise SelfCheckError(f"{name} failed on {device}: {str(e).splitlines()[0]} Tensors you create must live on "
                             "the model's device: use torch.zeros_like(p), or pass device=p.device") from None
    # an exercise's records are its own (counts on the CPU, say): the device check is for what a function returns
    problem = problem_with_result(name, got, {n: tuple(v.shape) for n, v in expected.items()},
                                  device if blank.exercise is None else None)
    if problem:
        raise SelfCheckError(problem)
    # float32 fixtures (MPS) round at about 1e-7 of the largest terms
    rtol, atol = (RTOL, ATOL) if fixture_dtype(device) == torch.float64 else (1e-4, 1e-6)
    wrong, hint = verdict(name, got, expected, variants, inputs, mistakes, rtol, atol)
    if verbose:
        print(f"{name} on the {'published' if seed is None else 'hidden'} fixture:")
        print(f"  {what[:-1].replace('entrie', 'entry'):18s} {'expected':34s} {'got':34s}")
        for n, e in expected.items():
            ok = torch.allclose(got[n].detach().double().cpu(), e, rtol, atol)
            print(f"  {n:18s} {fmt(e):34s} {fmt(got[n].detach().double().cpu()):34s} {'ok' if ok else 'DIFFERS'}")
    if wrong:
        verb = "differs" if len(wrong) == 1 else "differ"
        raise SelfCheckError(f"{name}: {', '.join(wrong)} {verb} from the expected values. {hint}")
    if verbose:
        variant = "" if matches(got, expected) else " (a legitimate variant of the reference: " + next(
            text for (_, text), v in zip(blank.variants, variants, strict=True) if matches(got, v)) + ")"
        print((f"{name}: all {len(expected)} {what} match" if len(expected) > 1 else
               f"{name}: its {what[:-3]}y matches") + variant + ".")
    return True


def check_answer(namespace, question, options):
    """Visible quiz check: `question` (e.g. "q01") is defined in `namespace` as a set of letters
    from `options`. Whether the set is right is the autograder's business."""
    if question not in namespace:
        raise NotWrittenError(f"{question} is not answered yet: set it in the quiz cell above, "
                              f'e.g. {question} = {{"a"}}')
    answer = namespace[question]
    if isinstance(answer, str):
        answer = {answer}
    if not isinstance(answer, (set, frozenset, list, tuple)) or not answer:
        raise SelfCheckError(f'{question} must be a non-empty set of letters such as {{"a", "c"}}, got {answer!r}')
    bad = [a for a in answer if a not in options]
    if bad:
        raise SelfCheckError(f"{question}: {bad[0]!r} is not an option; choose from {', '.join(options)}")
    print(f"{question}: answer recorded ({', '.join(sorted(answer))})")
    return set(answer)
