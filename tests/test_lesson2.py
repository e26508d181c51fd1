"""What lesson 2's notebook calls (cl_course.lesson2): training the notebook's strategy classes and the
library's methods on Split MNIST-shaped tasks, confusion matrices, and the comparison."""
import math

import pytest
import torch

from cl_course import lesson2, profiles, selfcheck
from cl_course.blanks import BLANKS
from cl_course.data import Task

from helpers import notebook_solutions


def tiny_split(scenario="class", n=3):
    """n tasks of two 'digits' each, 784 inputs, as data.split_mnist labels them in `scenario`."""
    g = torch.Generator().manual_seed(0)
    tasks = []
    for k in range(n):
        y = torch.randint(0, 2, (64,), generator=g)
        x = torch.randn(64, 784, generator=g) + 3 * y[:, None] * (torch.arange(784) % (k + 2) == 0)
        labels = y + 2 * k if scenario == "class" else y
        tasks.append(Task(f"digits {2 * k}/{2 * k + 1}", x, labels, x[:16], labels[:16],
                          head=k if scenario == "task" else 0, classes=(2 * k, 2 * k + 1)))
    return tasks


def tiny_config(scenario="class"):
    return profiles.split_config(scenario, "grading", tasks=3, iterations=3, buffer_per_class=4, hidden=(16,))


@pytest.fixture(autouse=True)
def no_profile_variable(monkeypatch):
    monkeypatch.delenv("CL_COURSE_PROFILE", raising=False)


@pytest.mark.parametrize("scenario", ["task", "domain", "class"])
def test_the_notebooks_classes_train_in_every_scenario(scenario):
    answers = notebook_solutions("lesson2")
    config, tasks = tiny_config(scenario), tiny_split(scenario)
    for method, blank in (("lwf", "LwF"), ("er", "ExperienceReplay"), ("agem", "AGEM")):
        history = lesson2.train(method, config, tasks, strategy=answers[blank])
        assert len(history.accuracy_matrix) == 3, method


def test_a_notebook_class_and_the_librarys_give_the_same_run_when_they_draw_nothing_at_random():
    """LwF draws nothing at random: the notebook's class (with its own distillation_loss) and the library's
    train the same model."""
    answers = notebook_solutions("lesson2")
    config, tasks = tiny_config("task"), tiny_split("task")
    mine = lesson2.train("lwf", config, tasks, strategy=answers["LwF"])
    library = lesson2.train("lwf", config, tasks)
    assert mine.accuracy_matrix == library.accuracy_matrix


def test_a_wrong_class_is_refused_before_training(monkeypatch):
    monkeypatch.setattr(lesson2, "run_methods", lambda *a, **k: pytest.fail("trained with a wrong class"))
    wrong, message = BLANKS["ExperienceReplay"].mistakes[0]
    with pytest.raises(selfcheck.SelfCheckError, match="er will not train with this ExperienceReplay"):
        lesson2.train("er", tiny_config(), tiny_split(), strategy=wrong)


def test_an_unwritten_class_says_so_before_training(monkeypatch):
    monkeypatch.setattr(lesson2, "run_methods", lambda *a, **k: pytest.fail("trained"))

    class AGEM(notebook_solutions("lesson2")["ExperienceReplay"]):
        def adjust_gradients(self, model, tasks):
            raise NotImplementedError
    with pytest.raises(NotImplementedError, match="agem cannot train yet: AGEM is not written"):
        lesson2.train("agem", tiny_config(), tiny_split(), strategy=AGEM)


def test_the_student_edition_leaves_ewc_to_the_students_hw14_functions(monkeypatch, capsys):
    monkeypatch.setattr(lesson2, "EDITION", "student")
    assert lesson2.train("ewc", tiny_config(), tiny_split()) is None
    assert "it needs fisher_diagonal" in capsys.readouterr().out
    hw14 = notebook_solutions("hw14")
    history = lesson2.train("ewc", tiny_config(), tiny_split(), fisher_diagonal=hw14["fisher_diagonal"])
    assert len(history.accuracy_matrix) == 3


def test_confusion_matrices_count_every_test_image_after_every_task():
    tasks = tiny_split()
    history, matrices = lesson2.confusion_after_each_task("baseline", tiny_config(), tasks)
    assert len(matrices) == 3 and all(m.shape == (6, 6) for m in matrices)  # the head: the 6 digits of 3 tasks
    assert all(int(m.sum()) == sum(len(t.y_test) for t in tasks) for m in matrices)
    for m, accuracy in zip(matrices, history.accuracy_matrix, strict=True):  # the diagonal is the accuracy
        per_task = [float(sum(m[c, c] for c in t.classes) / m[list(t.classes)].sum()) * 100 for t in tasks]
        assert per_task == pytest.approx(accuracy, abs=1e-4)
    shares = lesson2.newest_share(matrices, tasks)
    assert all(0 <= s <= 100 for s in shares)


def test_the_newest_share_of_a_hand_made_confusion_matrix():
    tasks = tiny_split(n=2)
    answered = torch.zeros(10, 10, dtype=torch.long)
    answered[0, 2], answered[1, 3], answered[2, 2] = 5, 3, 2  # 10 images, 10 answered 2 or 3
    answered[0, 0] = 10  # and 10 answered 0
    assert lesson2.newest_share([answered, answered], tasks) == [50.0, 50.0]


def test_the_comparison_puts_each_run_beside_the_shipped_and_published_numbers():
    config, tasks = tiny_config(), tiny_split()
    run = lesson2.train("baseline", config, tasks)
    table = lesson2.comparison_markdown({"class": {"baseline": run, "ewc": None}}, "grading")
    baseline = next(line for line in table.splitlines() if line.startswith("| baseline |"))
    cells = [c.strip() for c in baseline.strip("|").split("|")]
    shipped = lesson2.shipped_table()["cells"]["baseline"]
    assert cells[7] == f"{lesson2.final_average(run):.1f}"  # class-IL: this notebook
    assert cells[8] == f"{shipped['class']['mean_sem'][0]:.1f} +-{shipped['class']['mean_sem'][1]:.1f}"
    assert cells[9] == "19.9" and cells[1] == "not trained"
    assert "| icarl | n/a | n/a |" in table
    assert "the baseline" in lesson2.finding({"class": {"baseline": run}})
    assert len(lesson2.plot_comparison({"class": {"baseline": run}}).axes) == 3


def test_the_shipped_table_is_the_benchmarks_result():
    from pathlib import Path
    import json
    shipped = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "split_mnist" / "results.json"
    assert lesson2.shipped_table() == json.loads(shipped.read_text())


def test_split_profiles_carry_each_scenarios_lambdas_and_refuse_a_bad_scenario():
    assert profiles.split_config("domain", "quick").lambdas == profiles.SPLIT_LAMBDAS["domain"]
    assert profiles.split_config("class", "full").iterations == 2000
    with pytest.raises(ValueError, match="unknown scenario 'classes'"):
        profiles.split_config("classes", "quick")
    assert not math.isnan(profiles.split_config("task", "quick").lr)


def test_a_figure_leaves_out_what_is_not_trained_yet():
    run = lesson2.train("baseline", tiny_config(), tiny_split())
    assert lesson2.trained({"baseline": run, "er": None}, "baseline", "er", "agem") == {"baseline": run}
