"""The context-specific table: its cells run alike on a Dask LocalCluster and on the process pool (the same
runs.json but for wall times), its bounds judged on hand-made results, and a short real table end to end."""
import json
import math

import pytest

from cl_course import context_table
from cl_course.cluster import dask_pool
from cl_course.data import data_root
from cl_course.table import Cell, Runs


def tiny(**overrides):
    return context_table.protocol(iterations=3, subset=60, test_subset=40, data_root=str(data_root(None)),
                                  eval_batch_size=256, **overrides)


def without_times(path):
    return {k: {f: v for f, v in r.items() if f != "wall_time_s"} for k, r in json.loads(path.read_text()).items()}


def test_cells_give_the_same_runs_on_a_local_dask_cluster_as_on_the_process_pool(tmp_path):
    pytest.importorskip("distributed")
    cells = [Cell("baseline", "task", 1, 0.0, False), Cell("xdg", "class", 1, 0.0, False, task_inference=True),
             Cell("progressive", "task", 2, 0.0, False), Cell("xdg-si", "task", 1, 10.0, True)]
    Runs(tmp_path / "pool" / "runs.json").run(cells, tiny(), workers=2)
    with dask_pool(2, cluster="local") as pool:
        Runs(tmp_path / "dask" / "runs.json", pool).run(cells, tiny(), workers=2)
    here, there = without_times(tmp_path / "pool" / "runs.json"), without_times(tmp_path / "dask" / "runs.json")
    assert len(here) == 4 and here == there
    assert "task_inference" in here[cells[1].key()] and cells[1].key().endswith("|task inferred")


def test_the_cluster_options_are_one_line_errors(monkeypatch):
    monkeypatch.setattr("cl_course.cluster.CONNECT_SECONDS", 2)
    with pytest.raises(ValueError, match="not both"), dask_pool(2, "tcp://x:1", "local"):
        pass
    with pytest.raises(ValueError, match="--cluster takes 'local'"), dask_pool(2, cluster="slurm"):
        pass
    with pytest.raises(ValueError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:9"), \
            dask_pool(2, "tcp://127.0.0.1:9"):
        pass


def summary_of(task, klass=None):
    """A benchmark's cells from per-method (final averages, BWTs) over seeds."""
    def cell(averages, bwts):
        mean = sum(averages) / len(averages)
        return {"final_average_accuracy": averages, "mean_sem": (mean, float("nan")), "bwt": bwts,
                "task_inference": [], "wall_time_s": [1.0] * len(averages)}
    return {"task": {m: cell(*v) for m, v in task.items()}} | ({"class": {m: cell(*v) for m, v in klass.items()}}
                                                              if klass else {})


def test_the_bounds_hold_or_fail_as_stated():
    split = summary_of({"baseline": ([95.0], [-3.0]), "separate": ([99.5], [0.0]), "packnet": ([99.2], [-1e-9]),
                        "hat": ([99.1], [-0.6]), "xdg": ([98.9], [-0.1]), "progressive": ([99.4], [0.0])})
    judged = {(m, what.split(" ")[0]): ok for m, what, _, ok in context_table.bounds("split-mnist", split)}
    assert judged[("separate", "BWT")] and judged[("progressive", "BWT")]
    assert not judged[("packnet", "BWT")]  # exactly 0, not nearly
    assert not judged[("hat", "BWT")] and not judged[("xdg", "at")] and judged[("hat", "at")]
    assert judged[("xdg", "within")] and judged[("separate", "within")]  # 98.9 and 99.5 within 1 of 99.10 / 99.0
    assert all(m != "baseline" for m, *_ in context_table.bounds("split-mnist", split))
    permuted = summary_of({"separate": ([96.0], [0.0]), "xdg": ([93.5], [-0.2]), "hat": ([94.5], [-0.3])})
    near = {m: ok for m, what, _, ok in context_table.bounds("permuted-mnist", permuted) if "separate" in what}
    assert near == {"xdg": False, "hat": True}


def test_a_short_table_end_to_end(tmp_path):
    data = context_table.build_context_table(tmp_path, ("split-mnist",), seeds=1, workers=1, iterations=3,
                                             subset=60, test_subset=40, data_root=str(data_root(None)),
                                             eval_batch_size=256)
    split = data["benchmarks"]["split-mnist"]
    assert set(split["cells"]["task"]) == set(context_table.TASK_METHODS)
    assert set(split["cells"]["class"]) == {"baseline", "separate", "xdg", "packnet", "hat", "progressive", "er"}
    assert set(split["lambdas"]) == {"xdg-si|task", "xdg-ewc|task"}
    for m in context_table.FROZEN:  # exactly zero even on a 3-batch run
        assert split["cells"]["task"][m]["bwt"] == [0.0]
    rates = split["cells"]["class"]["xdg"]["task_inference"][0]
    assert len(rates) == 5 and all(0 <= v <= 100 for v in rates.values())
    summary = (tmp_path / "summary.md").read_text()
    assert "## split-mnist" in summary and "| packnet | BWT exactly 0.00 on every seed | 0.00 | yes |  |" in summary
    assert not math.isnan(json.loads((tmp_path / "results.json").read_text())["wall_time_s_this_call"])
    assert (tmp_path / "split-mnist" / "runs.json").exists()
