"""Independent reference computations: plain autograd, one sample or one slice at a time; and the
notebook's own solutions."""
import json
import subprocess
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "hw14_lifelong_learning.ipynb"
COLAB = ROOT / ".venv-colab" / "bin" / "python"  # `make colab-env`: Colab's Python and package versions


def gradient(model, scalar):
    model.zero_grad(set_to_none=True)
    scalar.backward()
    return {n: p.grad.detach().clone() for n, p in model.named_parameters()}


def assert_close(got, expected, rtol=1e-9, atol=1e-12):
    assert got.keys() == expected.keys()
    for n in expected:
        torch.testing.assert_close(got[n], expected[n], rtol=rtol, atol=atol, msg=lambda m, n=n: f"{n}: {m}")


def notebook_solutions():
    """The notebook's solution cells run in one namespace: independent code from the library's."""
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    namespace = {"torch": torch, "F": torch.nn.functional}
    for cell in cells:
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
