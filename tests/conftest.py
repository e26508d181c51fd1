import os
from pathlib import Path

import pytest
import torch

from cl_course.model import MLP

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def data_root():
    """An MNIST root: $CL_COURSE_DATA, else ../shared/data. CI sets CL_COURSE_REQUIRE_DATA=1 so
    that a missing root fails instead of skipping."""
    root = Path(os.environ.get("CL_COURSE_DATA") or SHARED_DATA)
    if not (root / "MNIST" / "raw" / "t10k-images-idx3-ubyte").exists():
        if os.environ.get("CL_COURSE_REQUIRE_DATA"):
            pytest.fail(f"no MNIST under {root}: set CL_COURSE_DATA to a torchvision MNIST root")
        pytest.skip(f"no MNIST under {root} (set CL_COURSE_DATA)")
    return root


@pytest.fixture
def tiny_mlp():
    """A small MLP in float64 so that independent computations agree to ~1e-12."""
    torch.manual_seed(0)
    return MLP(out_features=4, hidden=(6, 5), in_features=8).double()


@pytest.fixture
def tiny_batches():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(23, 8, generator=g, dtype=torch.float64)
    y = torch.randint(0, 4, (23,), generator=g)
    return [(x[:9], y[:9]), (x[9:], y[9:])]  # unequal batches on purpose
