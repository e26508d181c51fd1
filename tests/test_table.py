"""The Split MNIST table's bookkeeping, without training: resuming from runs.json, the lambda grid's
extension, mean +- SEM, and the summary beside the published numbers."""
import json
import math

import pytest

from cl_course import table
from cl_course.data import REPO as ROOT
from cl_course.table import PUBLISHED, Cell, Runs, choose_lambdas, mean_sem


def fake_result(accuracy):
    return {"accuracy_matrix": [[accuracy] * 5] * 5, "wall_time_s": 1.0, "training_samples_per_task": [4000] * 5}


def test_mean_and_sem_against_hand_computed_values():
    mean, sem = mean_sem([1.0, 2.0, 6.0])
    assert mean == 3.0
    assert sem == pytest.approx(math.sqrt(((4 + 1 + 9) / 2) / 3))  # sample std / sqrt(n)
    assert math.isnan(mean_sem([5.0])[1])


def test_runs_are_kept_at_once_and_a_rerun_resumes(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(table, "run_cell", lambda cell, base: calls.append(cell) or fake_result(50.0 + cell.seed))
    cells = [Cell("er", "class", seed, 0.0, False) for seed in (1, 2)]
    Runs(tmp_path / "runs.json").run(cells, base=None)
    assert len(calls) == 2 and len(json.loads((tmp_path / "runs.json").read_text())) == 2
    more = cells + [Cell("er", "class", 3, 0.0, False)]
    results = Runs(tmp_path / "runs.json").run(more, base=None)
    assert len(calls) == 3 and calls[-1].seed == 3  # only the new cell ran
    assert [table.final_average(results[c]) for c in more] == [51.0, 52.0, 53.0]


def test_the_lambda_grid_grows_while_the_best_sits_at_an_end(tmp_path, monkeypatch):
    """A score peaked at 1e8: the grid (1e2, 1e4, 1e6) must grow upwards to 1e9 and choose 1e8."""
    monkeypatch.setattr(table, "run_cell",
                        lambda cell, base: fake_result(90.0 - abs(math.log10(cell.lam) - 8)))
    monkeypatch.setitem(table.GRIDS, "online-ewc", (1e2, 1e4, 1e6))
    chosen, scores = choose_lambdas(Runs(tmp_path / "runs.json"), None, ["online-ewc", "er"], ["task"], workers=1)
    assert chosen == {("online-ewc", "task"): 1e8}  # er has no lambda
    assert list(scores["online-ewc|task"]) == ["100", "10000", "1e+06", "1e+07", "1e+08", "1e+09"]


def test_a_regulariser_without_a_grid_is_refused_before_any_run(tmp_path, monkeypatch):
    monkeypatch.setattr(table, "run_cell", lambda cell, base: pytest.fail("nothing may run"))
    with pytest.raises(ValueError, match="table.GRIDS, which has none for rwalk, scp: add a grid"):
        table.build_table(tmp_path, ["baseline", "rwalk", "scp"], scenarios=["task"], seeds=1, workers=1)
    assert not list(tmp_path.iterdir())  # nothing written


def test_summary_puts_ours_beside_the_published_numbers(tmp_path, monkeypatch):
    monkeypatch.setattr(table, "run_cell", lambda cell, base: fake_result(20.0 + cell.seed))
    monkeypatch.setattr(table, "GRIDS", {"si": (1.0, 10.0, 100.0)})
    data = table.build_table(tmp_path, methods=("baseline", "si", "icarl"), seeds=2, workers=1,
                             base=table.protocol())
    summary = (tmp_path / "summary.md").read_text()
    assert "| baseline | 21.50 +-0.50 | 85.15 +-1.00 | 93.46 | 21.50 +-0.50 | 57.33 +-1.66 | 55.16 | 21.50 +-0.50 | " \
           "19.90 +-0.02 | 19.71 |" in summary
    assert "| icarl | n/a |  |  | n/a |  |  | 21.50 +-0.50 | 94.57 (budget 2,000) |  |" in summary  # class-IL only
    assert "| baseline | class | within 1.5 of 20 | 21.50 | yes |  |" in summary
    assert "si, task: 1 (grid:" in summary and "4,000-4,000 images" in summary
    assert data["cells"]["si"]["class"]["final_average_accuracy"] == [21.0, 22.0]
    assert (tmp_path / "scenarios.png").stat().st_size > 0
    assert set(PUBLISHED["baseline"]) == {"task", "domain", "class"}


def test_acceptance_holds_each_cell_to_one_bound():
    """Hand-picked means on both sides of each kind of bound; a cell with a bound of its own is not also held
    to a published number, and replay without a number of van de Ven & Tolias's is held to Hsu et al.'s."""
    means = {("baseline", "class"): 21.4, ("si", "class"): 21.6, ("er", "class"): 80.0, ("agem", "class"): 31.5,
             ("er", "task"): 97.9, ("er", "domain"): 92.2, ("gem", "class"): 89.1, ("lwf", "domain"): 74.03,
             ("joint", "class"): 95.9}
    cells = {}
    for (m, s), v in means.items():
        cells.setdefault(m, {})[s] = {"mean_sem": (v, 0.1)}
    checks = {(m, s): (what, holds) for m, s, what, _, holds in table.acceptance(cells)}
    assert set(checks) == set(means)  # one check per cell that has a mean, none for the rest
    assert checks[("baseline", "class")] == ("within 1.5 of 20", True)
    assert checks[("si", "class")] == ("within 1.5 of 20", False)
    assert checks[("er", "class")] == ("at least 80", True)
    assert checks[("agem", "class")] == ("at least 10 above every regulariser (21.60)", False)  # 31.5 < 21.6 + 10
    assert checks[("er", "task")] == ("at least 98.0", False)  # not Hsu et al.'s 99.40 as well
    assert checks[("er", "domain")] == ("within 3 of 95.16 (Hsu et al.)", True)  # 2.96 off
    assert checks[("gem", "class")] == ("within 3 of 92.20 (Hsu et al.)", False)
    assert checks[("lwf", "domain")] == ("within 3 of 71.02", False)
    assert checks[("joint", "class")] == ("within 2 of 97.93", False)


def test_cell_keys_of_the_shipped_runs_are_unchanged_and_replay_cells_add_their_memory():
    shipped = json.loads((ROOT / "benchmarks" / "results" / "split_mnist" / "runs.json").read_text())
    for key, run in shipped.items():
        assert Cell(**run["cell"]).key() == key
    assert Cell("er", "class", 2, 0.0, False, budget=500).key() == "er|class|2|0|test|budget 500"
    assert Cell("er", "class", 2, 0.0, False, budget=500, selection="herding").key() == \
        "er|class|2|0|test|budget 500|herding"
    config = Cell("gem", "domain", 3, 0.0, False, budget=200, selection="reservoir").config(table.protocol())
    assert (config.methods, config.scenario, config.seed, config.memory_budget, config.memory_selection) == \
        (("gem",), "domain", 3, 200, "reservoir")
    assert Cell("si", "task", 1, 10.0, True).config(table.protocol()).memory_budget == 1000  # the base's


def test_the_table_reruns_replay_cells_under_the_budget_and_says_which_budget_each_number_used(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(table, "run_cell", lambda cell, base: calls.append(cell) or fake_result(
        (70.0 if cell.budget else 40.0) + cell.seed))
    monkeypatch.setattr(table, "GRIDS", {})
    Runs(tmp_path / "runs.json").run([Cell("er", "class", s, 0.0, False) for s in (1, 2)], base=None)  # before
    calls.clear()
    data = table.build_table(tmp_path, methods=("baseline", "er"), scenarios=("class",), seeds=2, workers=1,
                             base=table.protocol())
    assert sorted((c.method, c.seed, c.budget) for c in calls) == [("baseline", 1, None), ("baseline", 2, None),
                                                                    ("er", 1, 1000), ("er", 2, 1000)]
    assert len(json.loads((tmp_path / "runs.json").read_text())) == 6  # the runs before the budget are kept apart
    assert data["cells"]["er"]["class"]["memory_budget"] == 1000 and "memory_budget" not in data["cells"]["baseline"][
        "class"]
    assert data["cells"]["er"]["class"]["final_average_accuracy"] == [71.0, 72.0]
    assert json.loads((tmp_path / "results.json").read_text())["replay_before_budget"] == {
        "er": {"class": {"final_average_accuracy": [41.0, 42.0], "mean_sem": [41.5, 0.5]}}}
    summary = (tmp_path / "summary.md").read_text()
    assert "keeps a memory of 1,000 samples in all" in summary
    assert "| er | n/a | n/a | n/a | n/a | 71.50 +-0.50 | 41.50 +-0.50 |" in summary
