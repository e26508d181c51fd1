import pytest

from cl_course.profiles import PROFILES, profile_config, profile_name


def test_profile_from_environment(monkeypatch):
    monkeypatch.setenv("CL_COURSE_PROFILE", "grading")
    assert profile_name() == "grading"
    assert profile_config().tasks == PROFILES["grading"]["tasks"]
    assert profile_name("full") == "full"


def test_default_without_gpu_is_quick(monkeypatch):
    monkeypatch.delenv("CL_COURSE_PROFILE", raising=False)
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    assert profile_name() == "quick"
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    assert profile_name() == "full"


def test_full_is_hw14():
    c = profile_config("full")
    assert (c.protocol, c.tasks, c.epochs, c.batch_size, c.lr, c.subset, c.test_subset) == ("hw14", 5, 10, 128, 1e-4, None, None)


def test_profiles_only_shrink_the_run():
    sizes = [(c.tasks * c.epochs * (c.subset or 60000)) for c in map(profile_config, ("full", "quick", "grading"))]
    assert sizes == sorted(sizes, reverse=True)


def test_unknown_profile_is_one_line(monkeypatch):
    monkeypatch.setenv("CL_COURSE_PROFILE", "fast")
    with pytest.raises(ValueError, match="unknown run profile 'fast' .*choose full, quick, grading"):
        profile_name()


def test_overrides_are_checked():
    assert profile_config("quick", protocol="paper").protocol == "paper"
    with pytest.raises(ValueError, match="test-subset must be a positive"):
        profile_config("quick", test_subset=0)
