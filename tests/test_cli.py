"""The main job as a user runs it: bad options get one line and exit code 2; a short real run
writes results.json, the figures and summary.md."""
import json
import subprocess
import sys

import pytest

from cl_course.cli import build_parser, main

BAD = [
    (["run", "--methods", "ewc,foo"], "unknown method(s) foo"),
    (["run", "--methods", ","], "unknown method"),
    (["run", "--protocol", "paperz"], "invalid choice"),
    (["run", "--lambda", "ewc"], "expected METHOD=VALUE"),
    (["run", "--lambda", "ewc=lots"], "expected METHOD=VALUE"),
    (["run", "--lambda", "sgd=1"], "unknown method 'sgd'"),
    (["run", "--lambda", "ewc=-1"], "must be >= 0"),
    (["run", "--epochs", "0"], "epochs must be at least 1"),
    (["run", "--tasks", "three"], "invalid int value"),
    (["run", "--subset", "-5"], "subset must be a positive"),
    (["run", "--lr", "0"], "lr must be positive"),
    (["run", "--device", "tpu9"], "device"),
    (["run", "--fisher-labels", "true"], "invalid choice"),
    (["run", "--benchmark", "cifar"], "invalid choice"),
    (["run", "--scenario", "incremental"], "invalid choice"),
    (["run", "--methods", "icarl", "--benchmark", "split-mnist", "--scenario", "task"], "use --scenario class"),
    (["run", "--benchmark", "split-mnist", "--tasks", "6"], "split-mnist has 5 tasks"),
    (["run", "--iterations", "0"], "iterations must be at least 1"),
    (["run", "--memory-budget", "0"], "memory-budget must be at least 1"),
    (["run", "--memory-selection", "fifo"], "invalid choice"),
    (["run", "--methods", "er", "--benchmark", "split-mnist", "--memory-budget", "7"],
     "memory-budget 7 cannot keep one sample of each of the 8 classes stored before the last task; give at least 8"),
    (["run", "--methods", "icarl", "--benchmark", "split-mnist", "--memory-budget", "7", "--memory-selection",
      "reservoir"], "memory-budget 7 cannot keep one sample of each of the 8 classes"),  # iCaRL always herds
    (["run", "--methods", "lwf", "--benchmark", "split-mnist", "--scenario", "domain", "--lwf-seen-classes"],
     "lwf-seen-classes is a class-IL variant"),
    (["run", "--online-decay", "1.5"], "online-decay (gamma) must be in (0, 1]"),
    (["run", "--drop-transfer", "1"], "drop-transfer (p) must be in [0, 1)"),
    (["table", "--seeds", "0"], "--seeds must be at least 1"),
    (["table", "--benchmark", "permuted-mnist"], "invalid choice"),
    (["table", "--workers", "0"], "--workers must be at least 1"),
    (["table", "--scheduler", "tcp://x:1", "--cluster", "local"], "give --scheduler ADDRESS or --cluster local, not"),
    (["context-table", "--iterations", "0"], "--iterations must be at least 1"),
    (["context-table", "--benchmarks", "cifar"], "unknown benchmark 'cifar'; choose from split-mnist, permuted-mnist"),
    (["context-table", "--cluster", "slurm"], "invalid choice"),
    (["fly"], "invalid choice"),
    ([], "required"),
]


def cl_course(*args, env=None):
    return subprocess.run([sys.executable, "-m", "cl_course", *args], capture_output=True, text=True, env=env)


@pytest.mark.parametrize("argv,message", BAD)
def test_bad_options_get_one_line_and_exit_2(argv, message, data_root, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv + ["--data-root", str(data_root)] if argv and argv[0] in ("run", "table", "context-table") else argv)
    err = capsys.readouterr()
    assert e.value.code == 2
    assert message in err.err and err.err.count("\n") == 1
    assert err.out == ""


def test_a_bad_option_from_the_shell_has_no_traceback():
    r = cl_course("run", "--methods", "ewc,foo")
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr == "cl-course run: error: argument --methods: unknown method(s) foo; " \
                       "choose from baseline,ewc,mas,si,rwalk,scp,joint,online-ewc,lwf,er,agem,gem,dgr,dgr-distill," \
                       "icarl,separate,progressive,xdg,xdg-si,xdg-ewc,imm-mean,imm-mode,hat,packnet (see --help)\n"


def test_missing_data_is_one_line(tmp_path, monkeypatch):
    # no network needed: a file where the MNIST folder should be makes torchvision fail at once
    (tmp_path / "MNIST").write_text("not a folder")
    r = cl_course("run", "--epochs", "1", "--data-root", str(tmp_path))
    assert r.returncode == 1
    assert r.stderr.startswith("cl-course: error: MNIST is not under") and r.stderr.count("\n") == 1
    assert (tmp_path / "MNIST").read_text() == "not a folder"  # nothing lost


def test_help_lists_every_option():
    text = build_parser()._subparsers._group_actions[0].choices["run"].format_help()
    for option in ("--methods", "--protocol", "--tasks", "--epochs", "--batch-size", "--lr", "--lambda", "--subset",
                   "--seed", "--device", "--data-root", "--out", "--benchmark", "--scenario", "--iterations",
                   "--memory-budget", "--memory-selection", "--lwf-seen-classes", "--task-inference", "--online-decay",
                   "--drop-transfer"):
        assert option in text


def test_short_run_baseline_forgets_and_ewc_forgets_less(data_root, tmp_path):
    out = tmp_path / "run"
    r = cl_course("run", "--methods", "baseline,ewc", "--protocol", "paper", "--lambda", "ewc=100",
                  "--tasks", "3", "--epochs", "2", "--subset", "2000", "--lr", "1e-3", "--device", "cpu",
                  "--data-root", str(data_root), "--out", str(out), "--quiet")
    assert r.returncode == 0, r.stderr
    for name in ("results.json", "summary.md", "forgetting_curves.png", "accuracy_matrix.png", "average_accuracy.png"):
        assert (out / name).stat().st_size > 0, name
    data = json.loads((out / "results.json").read_text())
    assert data["environment"]["training_samples_per_task"] == 2000
    assert data["config"]["protocol"] == "paper" and data["config"]["lambdas"] == {"ewc": 100.0}
    base, ewc = data["methods"]["baseline"], data["methods"]["ewc"]
    assert len(base["average_accuracy_per_epoch"]) == 6 and len(base["accuracy_matrix"]) == 3
    assert base["metrics"]["forgetting"] > 3.0  # the baseline forgets task 1 and 2
    assert ewc["metrics"]["forgetting"] < 0.75 * base["metrics"]["forgetting"]
    assert ewc["metrics"]["average_accuracy"] > base["metrics"]["average_accuracy"]
    summary = (out / "summary.md").read_text()
    assert "| baseline |" in summary and "| ewc | 100 |" in summary


def test_split_mnist_class_il_the_baseline_forgets_and_replay_remembers(data_root, tmp_path):
    """The lesson of the three scenarios in a short run: in class-IL fine-tuning keeps only the last task's
    two digits (about 20% of all), experience replay keeps far more."""
    out = tmp_path / "split"
    r = cl_course("run", "--benchmark", "split-mnist", "--scenario", "class", "--methods", "baseline,er",
                  "--epochs", "1", "--iterations", "60", "--lr", "1e-3", "--test-subset", "300", "--device", "cpu",
                  "--data-root", str(data_root), "--out", str(out), "--quiet")
    assert r.returncode == 0, r.stderr
    data = json.loads((out / "results.json").read_text())
    assert data["config"]["benchmark"] == "split-mnist" and data["config"]["scenario"] == "class"
    base, er = (data["methods"][m]["accuracy_matrix"][-1] for m in ("baseline", "er"))
    assert base[-1] > 90 and sum(base[:-1]) / 4 < 10  # the newest two digits only
    assert sum(er) / 5 > sum(base) / 5 + 30
    assert "split-mnist" in (out / "summary.md").read_text()


def test_the_memory_budget_is_checked_against_the_classes_stored_only_where_there_is_a_quota():
    import torch

    from cl_course.cli import check_memory_budget
    from cl_course.config import RunConfig
    from cl_course.data import Task
    labels = torch.tensor([0, 1, 1, 0])
    tasks = [Task(f"t{k}", torch.zeros(4, 2), labels, torch.zeros(4, 2), labels) for k in range(3)]  # 4 stored
    for methods, budget, selection in ((("er", "agem", "gem"), 1, "reservoir"), (("baseline", "lwf"), 1, "random"),
                                       (("er", "icarl"), 4, "random")):
        check_memory_budget(RunConfig(methods=methods, memory_budget=budget, memory_selection=selection), tasks)
    for methods, selection in ((("gem",), "herding"), (("icarl",), "reservoir")):
        with pytest.raises(ValueError, match="memory-budget 3 cannot keep one sample of each of the 4 classes"):
            check_memory_budget(RunConfig(methods=methods, memory_budget=3, memory_selection=selection), tasks)
