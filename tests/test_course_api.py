"""What the course notebook calls (cl_course.notebook): the first cell's report, the profile's start,
and training that refuses an unwritten or wrong function before it trains."""
import time

import pytest
import torch

from cl_course import notebook as course
from cl_course import selfcheck
from cl_course.blanks import BLANKS, blanks_of
from cl_course.config import METHODS
from cl_course.data import Task
from cl_course.profiles import COSTS, PROFILES

from helpers import notebook_solutions


def tiny_tasks(n=2):
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 784, generator=g), torch.randint(0, 10, (64,), generator=g)
    return [Task(f"t{k}", x[:, torch.randperm(784, generator=g)], y, x[:16], y[:16], head=k) for k in range(n)]


def tiny_config():
    return course.profile_config("quick", tasks=2, epochs=1, subset=64, scp_slices=5)


@pytest.fixture(autouse=True)
def no_profile_variable(monkeypatch):
    monkeypatch.delenv("CL_COURSE_PROFILE", raising=False)


def test_welcome_names_versions_device_and_the_profiles_cost(capsys, monkeypatch):
    course.welcome("quick")
    out = capsys.readouterr().out
    assert "cl_course 0.1.0 (instructor edition), torch " in out and "device: cpu" in out
    assert f"Profile quick (PROFILE above): {COSTS['quick']}." in out and "No GPU" in out
    monkeypatch.setenv("CL_COURSE_PROFILE", "grading")
    course.welcome("quick")
    assert "Profile grading (from CL_COURSE_PROFILE)" in capsys.readouterr().out


def test_with_a_gpu_welcome_says_what_full_costs_and_how_to_switch(capsys, monkeypatch):
    monkeypatch.setattr(course, "select_device", lambda name="auto": torch.device("cuda"))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla T4")
    course.welcome("quick")
    out = capsys.readouterr().out
    assert "device: cuda (Tesla T4)" in out
    assert f'PROFILE = "full": {COSTS["full"]}. To use it, set it in this cell' in out


def test_start_prints_the_profile_and_its_lambdas(capsys, data_root):
    config, tasks = course.start("quick", data_root=str(data_root), tasks=2)
    out = capsys.readouterr().out
    assert config.lambdas == PROFILES["quick"]["lambdas"] and len(tasks) == 2
    assert "profile quick: 2 tasks x 2 epochs, 3,000 training and 500 test images per task, protocol paper" in out


def test_training_refuses_an_unwritten_function_at_once():
    def unwritten(model, batches):
        raise NotImplementedError
    start = time.perf_counter()
    with pytest.raises(NotImplementedError, match="ewc cannot train yet: fisher_diagonal is not written"):
        course.train("ewc", tiny_config(), tiny_tasks(), fisher_diagonal=unwritten)
    assert time.perf_counter() - start < 30  # no training happened (it would take far less than this anyway)


def test_training_refuses_a_function_that_fails_its_self_check(monkeypatch):
    monkeypatch.setattr(course, "run_methods", lambda *a, **k: pytest.fail("trained with a wrong function"))
    wrong, message = BLANKS["fisher_diagonal"].mistakes[0]
    with pytest.raises(selfcheck.SelfCheckError, match="ewc will not train with this fisher_diagonal, which fails its "
                                                       "self-check on cpu: .*Likely mistake"):
        course.train("ewc", tiny_config(), tiny_tasks(), fisher_diagonal=wrong)


def test_a_crash_in_the_students_function_keeps_its_traceback_with_a_note(monkeypatch):
    monkeypatch.setattr(course, "run_methods", lambda *a, **k: pytest.fail("trained"))
    def broken(model, batches):
        return {n: p.grad.pow(2) for n, p in model.named_parameters()}  # no gradient yet: TypeError/AttributeError
    with pytest.raises(AttributeError) as raised:
        course.train("mas", tiny_config(), tiny_tasks(), mas_importance=broken)
    note = raised.value.__notes__[0]
    assert "raised by your mas_importance on the self-check's fixture on cpu, before training mas" in note


def test_training_with_the_notebooks_solutions_runs_every_method():
    answers = notebook_solutions("hw14")
    for method in (m for m in METHODS if any(BLANKS[n].lesson == "hw14" for n in blanks_of(m))):
        history = course.train(method, tiny_config(), tiny_tasks(), **{n: answers[n] for n in blanks_of(method)})
        assert len(history.accuracy_matrix) == 2, method
