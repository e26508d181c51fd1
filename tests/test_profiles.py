import importlib.util
import json
from pathlib import Path

import pytest
import torch

from cl_course.data import load_mnist, normalise
from cl_course.profiles import (FULL_LAMBDAS, PROFILES, QUICK_LAMBDAS, SPLIT_LAMBDAS, profile_config, profile_name,
                                split_config)
from cl_course.train import load_tasks
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


# ---------------------------------------------------------------- lesson 2's quick profile

def split_quick_benchmark():
    """benchmarks/split_quick_profile.py as a module (the benchmarks are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location("split_quick_profile", ROOT / "benchmarks" / "split_quick_profile.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def passing_table():
    return {"task": {"baseline": 97.0, "ewc": 96.0, "si": 97.5, "lwf": 98.0, "er": 98.0, "agem": 97.0, "dgr": 96.5},
            "domain": {"baseline": 60.0, "ewc": 75.0, "si": 70.0, "lwf": 74.0, "er": 90.0, "agem": 75.5, "dgr": 80.0},
            "class": {"baseline": 19.0, "ewc": 25.0, "si": 20.0, "lwf": 30.0, "er": 85.0, "agem": 50.0, "dgr": 70.0,
                      "icarl": 75.0}}


def test_the_bounds_on_a_hand_worked_table():
    bounds = split_quick_benchmark().bounds
    verdicts = bounds(passing_table())
    # 6 methods against task-IL's baseline, 3 replay methods in domain-IL, 1 + 3 caps and 4 floors in class-IL
    assert [s for s, _, _ in verdicts] == ["task"] * 6 + ["domain"] * 3 + ["class"] * 8
    assert all(holds for _, _, holds in verdicts)  # ewc at baseline - 1 exactly, lwf at 30 exactly, agem at 30 + 20
    table = passing_table()
    table["task"]["dgr"] = 95.9                        # more than 1 below 97
    table["domain"]["agem"] = 75.0                     # equal to EWC's: not above it
    table["class"]["baseline"] = 25.5                  # above 25
    table["class"]["si"] = 31.0                        # above 30, and now the best: the floor is 51
    failed = [statement.split()[0] for _, statement, holds in bounds(table) if not holds]
    assert failed == ["dgr", "agem", "baseline", "si", "agem"]
    table = passing_table() | {"class": passing_table()["class"] | {"baseline": 24.0, "ewc": 2.0, "si": 2.0,
                                                                   "lwf": 2.0, "agem": 43.9}}
    failed = [statement for _, statement, holds in bounds(table) if not holds]
    assert failed == ["agem 43.9 at least 44.0 (the best of baseline, EWC, SI, LwF + 20)"]  # the baseline's 24 + 20


def test_the_held_out_images_are_the_next_training_images_of_the_profiles_order(data_root):
    benchmark = split_quick_benchmark()
    config = split_config("class", "quick", seed=4, data_root=str(data_root), tasks=2)
    held, profile = benchmark.held_out_tasks(config), load_tasks(config, "cpu")
    (x_train, y_train), (x_test, _) = load_mnist(data_root)
    train_rows, test_rows = rows(normalise(x_train)), rows(normalise(x_test))
    for h, p in zip(held, profile, strict=True):
        assert torch.equal(h.x_train, p.x_train) and torch.equal(h.y_train, p.y_train)  # the profile's own training
        assert len(h.x_test) == benchmark.HELD_OUT and set(h.y_test.tolist()) == set(p.classes)
        held_rows = rows(h.x_test)
        assert len(held_rows) == benchmark.HELD_OUT and held_rows <= train_rows and not held_rows & test_rows
        assert not held_rows & rows(p.x_train)


def rows(images):
    return {r.numpy().tobytes() for r in images}


def recorded_held_out_means():
    """{(method, scenario, setting label): mean score over the tuning seeds} from the recorded held-out runs."""
    runs = json.loads((ROOT / "benchmarks" / "results" / "split_quick_profile" / "held_out_runs.json").read_text())
    by_cell = {}
    for key, score in runs.items():
        method, scenario, seed, label = key.split("|", 3)
        by_cell.setdefault((method, scenario, label), {})[int(seed)] = score
    assert all(set(seeds) == {4, 5, 6} for seeds in by_cell.values())  # the tuning seeds, never the bounds' 1-3
    return {cell: sum(seeds.values()) / 3 for cell, seeds in by_cell.items()}


def test_the_quick_split_lambdas_are_the_best_recorded_held_out_ones():
    means = recorded_held_out_means()
    for scenario, chosen in SPLIT_LAMBDAS["quick"].items():
        for method, lam in chosen.items():
            scores = {float(label.removeprefix("lambda=")): s for (m, sc, label), s in means.items()
                      if (m, sc) == (method, scenario)}
            best = max(scores.values())
            assert scores[lam] == best, (scenario, method)
            assert min(scores) < lam < max(scores)  # not at an end of its grid: the grid went past it both ways


def test_the_quick_generator_is_the_cheapest_within_a_point_of_the_best_recorded_held_out_one():
    means = recorded_held_out_means()
    by_setting = {}
    for (method, _, label), score in means.items():
        if method == "dgr":
            by_setting.setdefault(label, []).append(score)
    assert all(len(scores) == 3 for scores in by_setting.values())  # every setting in the three scenarios
    mean_of = {label: sum(scores) / 3 for label, scores in by_setting.items()}
    c = split_config("class", "quick")
    chosen = (f"generator={c.generator_iterations}|{c.generator_lr:g}|{'-'.join(map(str, c.generator_hidden))}|"
              f"{c.generator_latent}")
    good = [label for label, score in mean_of.items() if score >= max(mean_of.values()) - 1.0]
    assert chosen in good

    def size(label):  # VAE batches per task, hidden units, latent units
        iterations, _, hidden, latent = label.removeprefix("generator=").split("|")
        return (40 if iterations == "alongside" else int(iterations)), sum(map(int, hidden.split("-"))), int(latent)
    # none of the good ones is cheaper on every count
    assert not any(size(label) != size(chosen) and all(a <= b for a, b in zip(size(label), size(chosen), strict=True))
                   for label in good)
