"""Run profiles of the notebooks, read in one place.

  full     a Colab GPU: HW14's protocol, 5 tasks x 10 epochs on all the data
  quick    a CPU (the default when there is no GPU): the same pipeline on subsets, 2 epochs
  grading  tiny; the autograder sets it through CL_COURSE_PROFILE

A profile only sizes the training runs. Self-checks use their own fixed fixture (selfcheck.py), so
changing the profile never changes what they verify.
"""
import os
from dataclasses import replace

import torch

from .config import RunConfig

PROFILE_VARIABLE = "CL_COURSE_PROFILE"

PROFILES = {
    "full": dict(tasks=5, epochs=10, subset=None, test_subset=None),
    "quick": dict(tasks=5, epochs=2, subset=3000, test_subset=500),
    "grading": dict(tasks=2, epochs=1, subset=128, test_subset=32, scp_slices=10),
}


def profile_name(name=None):
    """`name`, else $CL_COURSE_PROFILE, else full with a CUDA GPU and quick without."""
    name = name or os.environ.get(PROFILE_VARIABLE) or ("full" if torch.cuda.is_available() else "quick")
    if name not in PROFILES:
        raise ValueError(f"unknown run profile {name!r} (from {PROFILE_VARIABLE}?); choose {', '.join(PROFILES)}")
    return name


def profile_config(name=None, **overrides):
    """The RunConfig of a profile (HW14's defaults, resized), with `overrides` on top."""
    return replace(RunConfig(**PROFILES[profile_name(name)]), **overrides).check()
