"""Independent reference computations: plain autograd, one sample or one slice at a time; the
notebook's own solutions; and what the self-check and the grader say of an answer."""
import json
import subprocess
from pathlib import Path

import pytest
import torch

from cl_course.data import Task
from cl_course.model import MLP
from cl_course.teaching import selfcheck
from cl_course.teaching.blanks import BLANKS
from grader import judge

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = {"hw14": ROOT / "notebooks" / "hw14_lifelong_learning.ipynb",
             "lesson3": ROOT / "notebooks" / "lesson3_context_specific.ipynb",
             "lesson2": ROOT / "notebooks" / "lesson2_scenarios_and_replay.ipynb"}
NOTEBOOK = NOTEBOOKS["hw14"]
COLAB = ROOT / ".venv-colab" / "bin" / "python"  # `make colab-env`: Colab's Python and package versions


def random_tasks(n, seed=0, heads=True, train=80, test=40):
    """n tasks of random 8-feature inputs with random labels in 0..3 (nothing to learn: what is checked is what a
    method keeps, not what it learns); task k answers through head k, or all through head 0."""
    g = torch.Generator().manual_seed(seed)
    return [Task(f"t{k}", torch.randn(train, 8, generator=g), torch.randint(0, 4, (train,), generator=g),
                 torch.randn(test, 8, generator=g), torch.randint(0, 4, (test,), generator=g), head=k if heads else 0)
            for k in range(n)]


def small_mlp(heads=1, hidden=(20, 10)):
    """An 8 -> hidden -> 4 MLP, the same weights every call."""
    torch.manual_seed(0)
    return MLP(out_features=4, heads=heads, hidden=hidden, in_features=8)


def most_confident(every):
    """Task inference by hand: every = [logits [N, C] under each context]; ([N, C] each sample's logits under its
    context of lowest softmax entropy, [N] that context), one sample and one context at a time."""
    chosen = []
    for i in range(len(every[0])):
        entropies = [float(-(torch.softmax(s[i], 0) * torch.log_softmax(s[i], 0)).sum()) for s in every]
        chosen.append(entropies.index(min(entropies)))
    return torch.stack([every[k][i] for i, k in enumerate(chosen)]), chosen


def gradient(model, scalar):
    model.zero_grad(set_to_none=True)
    scalar.backward()
    return {n: p.grad.detach().clone() for n, p in model.named_parameters()}


def assert_close(got, expected, rtol=1e-9, atol=1e-12):
    assert got.keys() == expected.keys()
    for n in expected:
        torch.testing.assert_close(got[n], expected[n], rtol=rtol, atol=atol, msg=lambda m, n=n: f"{n}: {m}")


def notebook_solutions(lesson=None):
    """The notebooks' solution cells (one lesson's, or both) run in one namespace: independent code from the
    library's. Lesson 2's classes see what its set-up cell imports."""
    namespace = {"torch": torch, "F": torch.nn.functional}
    exec("from cl_course.strategies import Replay, Strategy, frozen_copy, outputs_of_old_heads\n"
         "from cl_course.replay import flat_gradient, memory_gradient, set_flat_gradient", namespace)
    for name in [lesson] if lesson else NOTEBOOKS:
        for cell in json.loads(NOTEBOOKS[name].read_text())["cells"]:
            if cell.get("metadata", {}).get("nbgrader", {}).get("solution") and "def " in "".join(cell["source"]):
                exec("".join(cell["source"]), namespace)
    return namespace


def site_packages(python):
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    return subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def colab_overlay(venv):
    """A new virtual environment at `venv` that sees .venv-colab's packages (without copying 5 GB), so
    that what a test installs into it leaves .venv-colab as Colab is: without cl_course. Returns its python."""
    subprocess.run([COLAB, "-m", "venv", str(venv)], check=True)
    python = Path(venv) / "bin" / "python"
    # addsitedir, not a bare path, so that .venv-colab's own .pth files run too (setuptools' distutils
    # shim, which notebook 6.5 needs on Python 3.13)
    Path(site_packages(python), "colab.pth").write_text(f"import site; site.addsitedir({site_packages(COLAB)!r})\n")
    return python


def rejected_with(name, answer, seed=None):
    """The SelfCheckError's message of `answer` on the published fixture (seed None) or a hidden one."""
    with pytest.raises(selfcheck.SelfCheckError) as info:
        selfcheck.check(name, answer, verbose=False, seed=seed)
    assert "\n" not in str(info.value)
    return str(info.value)


def judged(name, answer, seed):
    """What the grader says of `answer` on the hidden fixture of `seed`: its judge names the typical mistakes by
    their values on that fixture (the notebook's hidden check cannot: the student edition has none of them)."""
    got = selfcheck.call(name, answer, BLANKS[name].fixture(seed))
    return selfcheck.verdict(name, got, judge.reference(name, seed), judge.variant_values(name, seed),
                             BLANKS[name].fixture(seed), judge.mistake_values(name, seed))
