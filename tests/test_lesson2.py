"""What lesson 2's notebook calls (cl_course.lessons.lesson2): training the notebook's strategy classes and the
library's methods on Split MNIST-shaped tasks, confusion matrices, and the comparison."""
import math

import pytest
import torch

from cl_course import profiles
from cl_course.lessons import lesson2
from cl_course.teaching import selfcheck
from cl_course.teaching.blanks import BLANKS
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
    return profiles.split_config(scenario, "grading", tasks=3, iterations=3, memory_budget=16, hidden=(16,))


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
    assert "In class-IL the baseline ends at" in lesson2.conclusions({"class": {"baseline": run}})
    assert len(lesson2.plot_comparison({"class": {"baseline": run}}).axes) == 3


def test_the_shipped_table_is_the_benchmarks_result():
    from pathlib import Path
    import json
    shipped = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "split_mnist" / "results.json"
    assert lesson2.shipped_table() == json.loads(shipped.read_text())


def test_split_profiles_carry_their_own_lambdas_and_generator_and_refuse_a_bad_scenario():
    for name in ("quick", "full"):
        for scenario in ("task", "domain", "class"):
            assert profiles.split_config(scenario, name).lambdas == profiles.SPLIT_LAMBDAS[name][scenario]
    assert profiles.SPLIT_LAMBDAS["quick"] != profiles.SPLIT_LAMBDAS["full"]  # 40 batches per task, not 2,000
    full, quick = profiles.split_config("class", "full"), profiles.split_config("class", "quick")
    assert full.iterations == 2000 and (full.generator_iterations, full.generator_hidden) == (None, (400, 400))
    assert quick.generator_iterations > quick.iterations  # the VAE gets batches of its own
    with pytest.raises(ValueError, match="unknown scenario 'classes'"):
        profiles.split_config("classes", "quick")
    assert not math.isnan(profiles.split_config("task", "quick").lr)


def test_a_figure_leaves_out_what_is_not_trained_yet():
    run = lesson2.train("baseline", tiny_config(), tiny_split())
    assert lesson2.trained({"baseline": run, "er": None}, "baseline", "er", "agem") == {"baseline": run}


def history(final, first_to_last):
    """A History whose last accuracy-matrix row is `first_to_last` (so its final average is their mean) and whose
    earlier rows do not matter here: the claims read the final row only."""
    from cl_course.train import History
    assert abs(sum(first_to_last) / len(first_to_last) - final) < 1e-9
    return History(accuracy_matrix=[list(first_to_last)] * len(first_to_last))


def test_the_claims_say_the_runs_numbers_and_whether_each_holds():
    """Hand-made final rows: one run that bears out every claim, then the same run with one claim broken at a time,
    each just past its bound."""
    good = {"task": {"baseline": history(97.0, [97.0] * 5), "ewc": history(96.2, [96.2] * 5)},
            "domain": {"baseline": history(55.0, [55.0] * 5), "ewc": history(80.0, [80.0] * 5),
                       "si": history(81.0, [81.0] * 5), "lwf": history(74.0, [74.0] * 5),
                       "er": history(95.0, [95.0] * 5), "agem": history(70.0, [70.0] * 5),
                       "dgr": history(90.0, [90.0] * 5)},
            "class": {"baseline": history(19.0, [0, 0, 0, 0, 95.0]), "ewc": history(40.0, [90.0, 60, 40, 10, 0]),
                      "si": history(25.0, [50.0, 0, 0, 20, 55.0]), "lwf": history(25.0, [98.0, 27, 0, 0, 0]),
                      "er": history(90.0, [90.0] * 5), "agem": history(60.0, [60.0] * 5),
                      "dgr": history(83.0, [83.0] * 5), "icarl": history(76.0, [76.0] * 5), "gem": None}}
    claims = lesson2.claims(good)
    assert len(claims) == 10 and all(c.holds for c in claims), [c.sentence for c in claims if not c.holds]
    assert "(the lowest is EWC, 96.2%)" in claims[0].sentence
    assert "ER 95.0%, DGR 90.0%" in claims[1].sentence and "EWC 80.0%, SI 81.0%" in claims[1].sentence
    markdown = lesson2.conclusions(good)
    assert markdown.count("holds in your run") == 10 and "does not hold" not in markdown

    def broken(scenario, method, final, row):
        """The first words of each claim that no longer holds when `method`'s run is replaced."""
        runs = {s: dict(by_m) for s, by_m in good.items()}
        runs[scenario][method] = history(final, row)
        return [" ".join(c.sentence.split()[:4]) for c in lesson2.claims(runs) if not c.holds]
    assert broken("task", "ewc", 95.9, [95.9] * 5) == ["Task-IL is easy for"]
    assert broken("domain", "agem", 90.5, [90.5] * 5) == ["A-GEM, which never trains"]
    assert broken("domain", "si", 95.5, [95.5] * 5) == ["In domain-IL the methods"]
    assert broken("domain", "lwf", 54.0, [54.0] * 5) == ["LwF ends above the"]
    assert broken("class", "baseline", 25.2, [0, 0, 0, 31.0, 95.0]) == ["In class-IL the baseline"]
    assert broken("class", "ewc", 40.0, [90.0, 60, 40, 5, 5]) == []  # 90 points lower: holds
    assert broken("class", "si", 25.0, [50.0, 0, 0, 9, 66.0]) == ["SI ends at 25.0%,"]  # 29 points lower
    assert broken("class", "lwf", 30.2, [98.0, 28, 25, 0, 0]) == ["LwF ends at 30.2%:"]
    assert broken("class", "lwf", 26.0, [79.0, 41, 10, 0, 0]) == ["LwF ends at 26.0%:"]  # task 1 kept at 79 < 80
    assert broken("class", "icarl", 59.5, [59.5] * 5) == ["Every method that trains", "A-GEM (60.0%) ends between"]
    assert "**does not hold in your run**" in lesson2.conclusions({"class": {"baseline": history(26.0, [26.0] * 5)}})


def test_the_student_edition_shows_the_shipped_lwf_variant_and_says_so(monkeypatch, capsys):
    import json
    from pathlib import Path
    monkeypatch.setattr(lesson2, "EDITION", "student")
    monkeypatch.setattr(lesson2, "train", lambda *a, **k: pytest.fail("the student edition trained the library's LwF"))
    shown = lesson2.lwf_old_classes_only(profiles.split_config("class", "quick"), [])
    assert "shipped quick-profile run of seed 1" in capsys.readouterr().out
    runs = json.loads((Path(__file__).parent.parent / "benchmarks" / "results" / "lwf_variant" /
                       "quick-seen-classes.json").read_text())
    seed1 = next(r["accuracy_matrix"] for r in runs.values() if r["cell"]["seed"] == 1)
    assert shown.accuracy_matrix == seed1 and round(lesson2.final_average(shown), 1) == 18.7
