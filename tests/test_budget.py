"""The memory-budget sweep (cl_course/budget.py): which runs it makes, how their results are arranged, resuming
from a runs.json, a small real sweep in this process, and its figure."""
import json
from dataclasses import asdict

import pytest

from cl_course import budget, profiles, table
from cl_course.plots import plot_memory_budget
from cl_course.table import Runs


def fake_result(accuracy):
    return {"accuracy_matrix": [[accuracy] * 5] * 5, "wall_time_s": 1.0, "training_samples_per_task": [100] * 5}


def fake_accuracy(cell):
    """A value that says which run it came from: selection (tens), budget (units), seed (tenths)."""
    tens = {"random": 10, "reservoir": 20, "herding": 30}.get(cell.selection, 0) if cell.method == "er" else 60
    return tens + {100: 1, 200: 2, 2000: 5}[cell.budget] + cell.seed / 10


def test_the_sweep_runs_every_selection_budget_and_seed_once_and_resumes(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(table, "run_cell", lambda cell, base: calls.append(cell) or fake_result(fake_accuracy(cell)))
    runs = Runs(tmp_path / "runs.json")
    sweep = budget.sweep(table.protocol(), "full", (100, 200), seeds=(1, 2), icarl_budgets=(2000,), runs=runs)
    assert sorted((c.method, c.selection, c.budget, c.seed) for c in calls) == sorted(
        [("er", s, k, seed) for s in ("random", "reservoir", "herding") for k in (100, 200) for seed in (1, 2)]
        + [("icarl", "random", 2000, seed) for seed in (1, 2)])
    assert all(c.scenario == "class" and not c.validation for c in calls)
    assert sweep.er == {"random": {100: (11.1, 11.2), 200: (12.1, 12.2)},
                        "reservoir": {100: (21.1, 21.2), 200: (22.1, 22.2)},
                        "herding": {100: (31.1, 31.2), 200: (32.1, 32.2)}}
    assert sweep.icarl == {2000: (65.1, 65.2)}
    assert sweep.mean_sem("reservoir")[1] == pytest.approx((22.15, 0.05))
    calls.clear()
    again = budget.sweep(table.protocol(), "full", (100, 200), seeds=(1, 2), icarl_budgets=(2000,),
                         runs=Runs(tmp_path / "runs.json"))
    assert calls == [] and again.er == sweep.er  # every run came from runs.json
    assert budget.BudgetSweep.from_json(json.loads(json.dumps(asdict(sweep)))) == sweep


def test_a_small_sweep_in_this_process_trains_each_selection(data_root):
    base = profiles.split_config("class", "grading", data_root=str(data_root), hidden=(16,))
    sweep = budget.sweep(base, "grading", budgets=(4, 8), seeds=(1, 2))
    assert sweep.budgets == (4, 8) and set(sweep.er) == {"random", "reservoir", "herding"}
    for by_budget in sweep.er.values():
        assert all(len(v) == 2 and all(0 <= a <= 100 for a in v) for v in by_budget.values())
    # two tasks: the memory only serves the second; with K = 4 and 8 runs differ by seed and rule
    assert len({a for by_budget in sweep.er.values() for v in by_budget.values() for a in v}) > 1


def test_the_figure_has_a_line_per_selection_and_the_published_point(tmp_path):
    sweep = budget.BudgetSweep("full", (100, 1000), (1, 2), {"random": {100: (50.0, 52.0), 1000: (80.0, 84.0)},
                                                            "herding": {100: (55.0, 55.0), 1000: (85.0, 87.0)}},
                               {1000: (90.0, 92.0)}, 1.0)
    fig = plot_memory_budget(sweep, tmp_path / "b.png", published={"iCaRL, published": (1000, 94.57)})
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert sorted(labels) == ["ER, herding", "ER, random", "iCaRL (herding, nearest mean)", "iCaRL, published"]
    assert fig.axes[0].get_ylim()[0] <= 45 and (tmp_path / "b.png").stat().st_size > 0


def test_the_summary_ranks_the_rules_from_the_sweeps_numbers():
    sweep = budget.BudgetSweep("quick", (100, 1000), (1, 2), {"random": {100: (50.0, 52.0), 1000: (80.0, 84.0)},
                                                             "herding": {100: (60.0, 62.0), 1000: (81.0, 83.0)},
                                                             "reservoir": {100: (40.0, 40.0), 1000: (79.0, 79.0)}},
                               {}, 1.0)
    lines = budget.summary(sweep).splitlines()
    assert lines[0] == "K = 100: herding 61.0 +- 1.0, random 51.0 +- 1.0, reservoir 40.0 +- 0.0"
    assert lines[1] == "K = 1,000: random 82.0 +- 2.0, herding 82.0 +- 1.0, reservoir 79.0 +- 0.0"
    assert "from 61.0 (herding) to 82.0 (random)" in lines[2]
    assert "from 21.0 to 3.0 points (narrower" in lines[2]


def test_the_student_edition_shows_the_shipped_quick_sweep_and_says_so(monkeypatch, capsys):
    from pathlib import Path
    monkeypatch.setattr(budget, "EDITION", "student")
    monkeypatch.setattr(budget, "sweep", lambda *a, **k: pytest.fail("the student edition ran the library's memories"))
    shown = budget.lesson_sweep(profiles.split_config("class", "quick"), "quick", (100, 500, 2000))
    assert "shipped quick-profile sweep" in capsys.readouterr().out
    benchmark = json.loads((Path(__file__).parent.parent / "benchmarks" / "results" / "memory_budget" / "quick" /
                            "results.json").read_text())["sweep"]  # the shipped copy is the benchmark's result
    assert shown.budgets == (100, 500, 2000) and shown.seeds == (1, 2, 3)
    for s in ("random", "reservoir", "herding"):
        assert shown.er[s] == {k: tuple(benchmark["er"][s][str(k)]) for k in (100, 500, 2000)}
    assert budget.summary(shown).startswith("K = 100: herding 81.1 +- 0.4, random 79.0 +- 1.4, reservoir 71.2")
