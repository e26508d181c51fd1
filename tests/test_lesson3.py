"""Lesson 3's helpers against independent computations: what a PackNet run records of its capacity (its masks
counted by hand), HAT's gates and their overlap (a loop over units), the turn's table and the cost table's laws
from known numbers, and each figure drawn from them."""
import pytest
import torch

from cl_course import RunConfig
from cl_course.cost import TaskCost
from cl_course.lessons import lesson3
from cl_course.train import History
from helpers import random_tasks

SMALL = dict(epochs=1, iterations=8, batch_size=20, hidden=(20, 10), lr=1e-2)


def test_outside_task_il_the_context_methods_infer_the_task():
    assert not lesson3.split_config("task", "grading").task_inference
    assert lesson3.split_config("class", "grading").task_inference
    assert not lesson3.split_config("class", "grading", task_inference=False).task_inference


def test_packnet_records_the_capacity_its_masks_leave_and_runs_out():
    config = RunConfig(scenario="task", tasks=4, **SMALL)
    tasks = random_tasks(4)
    strategy = lesson3.packnet_with_share(0.3, config)
    run = lesson3.train("packnet", config, tasks, strategy)
    # each task keeps 30% of every layer while it lasts: 70, 40, 10 and then nothing left
    assert [round(c["all"], 6) for c in run.capacity] == [70.0, 40.0, 10.0, 0.0]
    owners = strategy.owner
    free = sum(int((o == 0).sum()) for o in owners.values()) / sum(o.numel() for o in owners.values())
    assert run.capacity[-1]["all"] == 100 * free
    assert {n: run.capacity[-1][n] for n in owners} == strategy.capacity_left()
    # the fourth task found only the 10% the first three left, not its 30%
    assert all(float((o == 4).float().mean()) == pytest.approx(0.1, abs=1e-3) for o in owners.values())


def test_hat_records_each_tasks_units_and_their_overlap_by_hand():
    config = RunConfig(scenario="task", tasks=3, **SMALL)
    run = lesson3.train("hat", config, random_tasks(3))
    assert len(run.gates) == 3 and [len(g) for g in run.gates] == [2, 2, 2]
    assert [g[0].shape for g in run.gates] == [torch.Size([20])] * 3 and run.gates[0][0].dtype == torch.bool
    overlap = lesson3.gate_overlap(run.gates)
    for i in range(3):
        for j in range(3):
            a, b = run.gates[i][0].tolist(), run.gates[j][0].tolist()
            both = sum(x and y for x, y in zip(a, b, strict=True))
            either = sum(x or y for x, y in zip(a, b, strict=True))
            assert overlap[i][j] == pytest.approx(both / either if either else 0.0)


def test_gate_overlap_of_a_hand_made_case():
    gates = [(torch.tensor([True, True, False, False]),), (torch.tensor([False, True, True, False]),),
             (torch.tensor([False, False, False, False]),)]
    expected = [[1.0, 1 / 3, 0.0], [1 / 3, 1.0, 0.0], [0.0, 0.0, 0.0]]
    assert lesson3.gate_overlap(gates) == [pytest.approx(row) for row in expected]


def trained(matrix, inference=None):
    return lesson3.Trained(History(accuracy_matrix=matrix, task_inference=inference))


def test_the_turn_table_holds_each_runs_numbers():
    task = {"baseline": trained([[90.0, 50.0], [80.0, 96.0]]), "xdg": trained([[99.0, 50.0], [99.0, 98.0]])}
    cls = {"xdg": trained([[99.0, 0.0], [40.0, 60.0]], {"t0": 45.0, "t1": 65.0})}
    table = lesson3.turn_table(task, cls).splitlines()
    assert table[2] == "| baseline | 88.0 |  |  |"
    assert table[3] == "| xdg | 98.5 | 50.0 | 55.0% |"
    fig = lesson3.plot_turn(task, cls)
    assert len(fig.axes[0].patches) == 3  # two told, one inferred


def cost(t, parameters, stored):
    return TaskCost(t, parameters, 4 * parameters, {"state": stored}, 0.1)


def test_the_cost_table_states_the_law_of_known_growth():
    runs = {"ewc": {5: cost(5, 100, 800), 10: cost(10, 100, 800)},
            "progressive": {5: cost(5, 1000, 0), 10: cost(10, 4000, 0)},
            "xdg": {5: cost(5, 100, 400), 10: cost(10, 100, 800)}}
    rows = lesson3.cost_table(runs).splitlines()
    assert rows[2].endswith("| 0.00 | constant |")
    assert rows[3].endswith("| 2.00 | quadratic |")  # 4x the bytes at 2x the tasks
    assert rows[4].endswith("| 0.58 | linear |")      # (400 + 800) / (400 + 400) = 1.5 at 2x: T^0.58


def test_the_figures_draw_from_the_runs():
    capacity = lesson3.Trained(History(accuracy_matrix=[[99.0, 98.0, 95.0]]),
                               capacity=({"all": 70.0}, {"all": 40.0}, {"all": 10.0}))
    fig = lesson3.plot_capacity({"share 0.3": capacity})
    assert [line.get_ydata().tolist() for line in fig.axes[0].lines] == [[70.0, 40.0, 10.0]]
    gates = (torch.tensor([True, False]),), (torch.tensor([True, True]),)
    fig = lesson3.plot_gates(lesson3.Trained(History(), gates=gates))
    assert fig.axes[0].images[0].get_array().tolist() == [[1.0, 0.0], [1.0, 1.0]]
    fig = lesson3.plot_merge({"imm-mean": trained([[90.0, 80.0]]), "imm-mode": trained([[92.0, 85.0]])})
    assert [p.get_height() for p in fig.axes[0].patches] == [90.0, 80.0, 92.0, 85.0]


def test_the_student_edition_says_what_a_run_lacks_and_trains_what_it_has(monkeypatch, capsys):
    from cl_course.context import lowest_entropy
    from cl_course.packnet import prune_mask
    monkeypatch.setattr(lesson3, "EDITION", "student")
    tasks = random_tasks(2)
    told = RunConfig(scenario="task", tasks=2, lambdas={"xdg-si": 1.0}, **SMALL)
    assert lesson3.train("xdg-si", told, tasks) is None
    assert capsys.readouterr().out == ("xdg-si is not trained here: the student edition of the package leaves "
                                       "si_path_step, si_importance to you (you wrote them in HW14); pass "
                                       "si_path_step=si_path_step, si_importance=si_importance to train it.\n")
    assert lesson3.train("xdg", told, tasks) is not None  # told the task, XdG calls no blank
    inferred = RunConfig(scenario="task", tasks=2, task_inference=True, **SMALL)
    assert lesson3.train("separate", inferred, tasks) is None and "lowest_entropy" in capsys.readouterr().out
    assert lesson3.train("separate", inferred, tasks, lowest_entropy=lowest_entropy).history.task_inference
    strategy = lesson3.packnet_with_share(0.5, told, prune_mask=prune_mask)  # its answers are the strategy's
    assert lesson3.train("packnet", told, tasks, strategy).capacity
    assert lesson3.train("packnet", told, tasks) is None and "prune_mask=prune_mask" in capsys.readouterr().out
