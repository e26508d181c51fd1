"""What the course notebook calls (cl_course.lessons.notebook): the first cell's report, the profile's start,
and training that refuses an unwritten or wrong function before it trains."""
import time
from dataclasses import replace

import pytest
import torch

from cl_course import registry
from cl_course.config import METHODS
from cl_course.data import Task
from cl_course.lessons import notebook as course
from cl_course.profiles import COSTS, PROFILES
from cl_course.teaching import selfcheck
from cl_course.teaching.blanks import BLANKS, blanks_of

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
    assert "; importances from 500 random training images of each task" in out


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


def test_an_answer_named_as_no_blank_is_a_one_line_error_naming_the_blanks(monkeypatch):
    """The library leaves an answer it has no use for unused, silently; the lesson refuses it before anything runs."""
    monkeypatch.setattr(course, "run_methods", lambda *a, **k: pytest.fail("trained with an unknown answer"))
    with pytest.raises(ValueError, match="unknown answer 'fisher'; the notebook's answers are fisher_diagonal, ") as e:
        course.train("ewc", tiny_config(), tiny_tasks(), fisher=BLANKS["fisher_diagonal"].reference)
    assert "\n" not in str(e.value) and all(name in str(e.value) for name in BLANKS)


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
        config = tiny_config()
        if registry.spec(method).task_identity:  # XdG on SI or EWC: the task told, and a lambda of the run's own
            config = replace(config, scenario="task", lambdas=config.lambdas | {method: 1.0})
        history = course.train(method, config, tiny_tasks(),
                               **{n: answers[n] for n in blanks_of(method) if BLANKS[n].lesson == "hw14"})
        assert len(history.accuracy_matrix) == 2, method


def test_the_lambda_sweep_reuses_the_run_at_the_profiles_lambda_which_training_would_repeat():
    fisher = notebook_solutions("hw14")["fisher_diagonal"]
    config, tasks = tiny_config(), tiny_tasks()
    ewc = course.train("ewc", config, tasks, fisher_diagonal=fisher)
    sweep = course.lambda_sweep("ewc", [10.0, config.lam("ewc")], config, tasks, trained={"ewc": ewc},
                                fisher_diagonal=fisher)
    assert sweep[1] is ewc
    assert course.train("ewc", config, tasks, fisher_diagonal=fisher).accuracy_matrix == ewc.accuracy_matrix
    ten = course.train("ewc", replace(config, lambdas=config.lambdas | {"ewc": 10.0}), tasks, fisher_diagonal=fisher)
    assert sweep[0].accuracy_matrix == ten.accuracy_matrix
    assert course.lambda_sweep("ewc", [config.lam("ewc")], config, tasks, fisher_diagonal=fisher)[0] is not ewc


def test_importance_subset_stability_compares_the_subset_with_all_of_the_tasks_data(monkeypatch, capsys):
    """A stand-in Fisher whose every entry is its index times the number of samples it was given: from 16 and
    from 64 samples every relative difference is |16 - 64| / 64 = 0.75, every correlation 1, and the largest
    entries are the same ones."""
    monkeypatch.setattr(course, "checked", lambda *a: None)
    seen = []

    def counting(model, batches):
        n = sum(len(x) for x, _ in batches)
        seen.append(n)
        return {k: n * (1.0 + torch.arange(p.numel(), dtype=torch.float64)).reshape(p.shape)
                for k, p in model.named_parameters()}

    rows = course.importance_subset_stability(counting, replace(tiny_config(), importance_subset=16), tiny_tasks())
    assert seen == [16, 64]
    assert [r[0] for r in rows][-1] == "all" and len(rows) == 9  # fc1..fc4 weight and bias, then all of them
    for _, difference, correlation, _ in rows:
        assert difference == pytest.approx(0.75) and correlation == pytest.approx(1.0)
    assert rows[-1][3] == 1.0 and all(r[3] is None for r in rows[:-1])
    assert "from 16 of its 64 training images" in capsys.readouterr().out
    assert course.importance_subset_stability(counting, replace(tiny_config(), importance_subset=None),
                                              tiny_tasks()) == []
    assert "all 64 training images" in capsys.readouterr().out
