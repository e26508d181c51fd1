import json
from pathlib import Path

import pytest

from cl_course.profiles import FULL_LAMBDAS, PROFILES, QUICK_LAMBDAS, profile_config, profile_name
from cl_course.report import precomputed

ROOT = Path(__file__).resolve().parents[1]


def test_the_autograders_variable_wins_over_the_notebooks_line(monkeypatch):
    monkeypatch.setenv("CL_COURSE_PROFILE", "grading")
    assert profile_name() == "grading"
    assert profile_name("full") == "grading"  # a submission cannot make the grader train HW14's full run
    assert profile_config("full").tasks == PROFILES["grading"]["tasks"]


def test_quick_is_the_default_with_or_without_a_gpu(monkeypatch):
    monkeypatch.delenv("CL_COURSE_PROFILE", raising=False)
    for gpu in (False, True):
        monkeypatch.setattr("torch.cuda.is_available", lambda gpu=gpu: gpu)
        assert profile_name() == "quick"
        assert profile_name("full") == "full"  # chosen in the notebook's first cell


def test_full_is_hw14s_size_under_the_paper_protocol(monkeypatch):
    monkeypatch.delenv("CL_COURSE_PROFILE", raising=False)
    c = profile_config("full")
    assert (c.tasks, c.epochs, c.batch_size, c.lr, c.subset, c.test_subset) == (5, 10, 128, 1e-4, None, None)
    assert (c.protocol, c.fisher_labels) == ("paper", "empirical")  # what the students' functions compute
    assert c.lambdas == FULL_LAMBDAS


def test_the_full_lambdas_are_the_tuned_ones_and_the_shipped_paper_runs():
    tuning = json.loads((ROOT / "benchmarks" / "results" / "paper_cpu" / "lambda_tuning.json").read_text())
    scores = tuning["validation_average_accuracy"]
    assert {m: max(s, key=s.get) for m, s in scores.items()} == {m: str(v) for m, v in FULL_LAMBDAS.items()}
    assert tuning["chosen"] == FULL_LAMBDAS
    shipped = precomputed("paper")["methods"]
    assert {m: shipped[m]["lambda"] for m in FULL_LAMBDAS} == FULL_LAMBDAS


def test_quick_uses_its_own_lambdas_and_a_copy_of_them(monkeypatch):
    monkeypatch.delenv("CL_COURSE_PROFILE", raising=False)
    c = profile_config("quick")
    assert c.lambdas == QUICK_LAMBDAS and c.lr == 1e-3 and c.protocol == "paper"
    c.lambdas["ewc"] = 0.0
    assert profile_config("quick").lambdas["ewc"] == QUICK_LAMBDAS["ewc"] != 0.0


def test_importance_batches_fit_a_16_gb_gpu_when_answers_are_vectorised():
    params = 784 * 1024 + 1024 + 1024 * 512 + 512 + 512 * 256 + 256 + 256 * 10 + 10
    for name in PROFILES:
        batch = PROFILES[name]["importance_batch_size"]
        assert batch * params * 4 < 4 * 2**30, name  # float32 per-sample gradients of one batch: under 4 GB


def test_profiles_only_shrink_the_run(monkeypatch):
    monkeypatch.delenv("CL_COURSE_PROFILE", raising=False)
    sizes = [(c.tasks * c.epochs * (c.subset or 60000)) for c in map(profile_config, ("full", "quick", "grading"))]
    assert sizes == sorted(sizes, reverse=True)


def test_unknown_profile_is_one_line_naming_where_it_came_from(monkeypatch):
    monkeypatch.setenv("CL_COURSE_PROFILE", "fast")
    message = r"unknown run profile 'fast' in \$CL_COURSE_PROFILE; choose quick, full, grading"
    with pytest.raises(ValueError, match=message):
        profile_name()
    monkeypatch.delenv("CL_COURSE_PROFILE")
    with pytest.raises(ValueError, match="unknown run profile 'Quick' in PROFILE; choose"):
        profile_name("Quick")


def test_overrides_are_checked(monkeypatch):
    monkeypatch.delenv("CL_COURSE_PROFILE", raising=False)
    assert profile_config("quick", protocol="hw14").protocol == "hw14"
    with pytest.raises(ValueError, match="test-subset must be a positive"):
        profile_config("quick", test_subset=0)
