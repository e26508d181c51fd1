"""The method registry (cl_course/registry.py): every row builds the strategy the library built before it, the
tables other modules export are the ones they wrote out before, and a bad name or a missing lambda is one line."""
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from cl_course import config, demo, plots, registry, table
from cl_course.lessons import lesson2
from cl_course.teaching.blanks import BLANKS
from cl_course.cli import main
from cl_course.config import RunConfig
from cl_course.generative import GenerativeReplay
from cl_course.icarl import ICaRL
from cl_course.methods import make_strategy
from cl_course.replay import AGEM, GEM, ExperienceReplay
from cl_course.strategies import EWC, MAS, SCP, SI, Baseline, Joint, LwF, OnlineEWC, RWalk

# The tables as they were written out before the registry
METHODS = ("baseline", "ewc", "mas", "si", "rwalk", "scp", "joint", "online-ewc", "lwf", "er", "agem", "gem", "dgr",
           "dgr-distill", "icarl")
HW14_LAMBDAS = {"baseline": 0.0, "ewc": 100.0, "mas": 0.1, "si": 1.0, "rwalk": 100.0, "scp": 100.0, "joint": 0.0}
COLOURS = {"baseline": "#7f7f7f", "joint": "#000000", "ewc": "#1f77b4", "mas": "#ff7f0e", "si": "#2ca02c",
           "rwalk": "#d62728", "scp": "#9467bd", "online-ewc": "#aec7e8", "lwf": "#8c564b", "er": "#e377c2",
           "agem": "#bcbd22", "gem": "#dbdb8d", "dgr": "#17becf", "dgr-distill": "#9edae5", "icarl": "#c49c94"}
MARKERS = {"baseline": "o", "joint": "*", "ewc": "s", "mas": "^", "si": "D", "rwalk": "v", "scp": "P",
           "online-ewc": "H", "lwf": "<", "er": "X", "agem": ">", "gem": "h", "dgr": "p", "dgr-distill": "d",
           "icarl": "8"}
# added with the registry: the third family
CONTEXT = ("separate", "progressive", "xdg", "xdg-si", "xdg-ewc", "hat", "packnet")
IMM = ("imm-mean", "imm-mode")  # and IMM among the regularisers (imm.py)
ADDED = ("separate", "progressive", "xdg", "xdg-si", "xdg-ewc", "imm-mean", "imm-mode", "hat",
         "packnet")  # in the registry's order
KNOWN = ", ".join(METHODS + ADDED)


def built_before(method, config, answers=None):
    """methods.make_strategy as it was before the registry (its table of makers, copied)."""
    lam, seed = config.lam(method), config.seed
    regulariser = dict(protocol=config.protocol, batch_size=config.importance_batch_size, seed=seed, answers=answers,
                       samples=config.importance_subset)
    memory = dict(budget=config.memory_budget, seed=seed)
    filled = dict(selection=config.memory_selection, slots=(answers or {}).get("reservoir_slots"))
    generator = dict(seed=seed, lr=config.generator_lr, iterations=config.generator_iterations,
                     batch_size=config.batch_size, hidden=tuple(config.generator_hidden),
                     latent=config.generator_latent)
    makers = {
        "baseline": lambda: Baseline(lam),
        "joint": lambda: Joint(lam),
        "ewc": lambda: EWC(lam, fisher_labels=config.fisher_labels, **regulariser),
        "online-ewc": lambda: OnlineEWC(lam, decay=config.online_decay, fisher_labels=config.fisher_labels,
                                        **regulariser),
        "mas": lambda: MAS(lam, **regulariser),
        "si": lambda: SI(lam, **regulariser),
        "rwalk": lambda: RWalk(lam, fisher_labels=config.fisher_labels, **regulariser),
        "scp": lambda: SCP(lam, slices=config.scp_slices, **regulariser),
        "lwf": lambda: LwF(config.temperature, distillation=(answers or {}).get("distillation_loss"),
                           seen_classes_only=config.lwf_seen_classes),
        "er": lambda: ExperienceReplay(**memory, **filled),
        "agem": lambda: AGEM(**memory, **filled),
        "gem": lambda: GEM(**memory, **filled),
        "dgr": lambda: GenerativeReplay(**generator),
        "dgr-distill": lambda: GenerativeReplay(**generator, temperature=config.temperature),
        "icarl": lambda: ICaRL(**memory, herding=(answers or {}).get("herding_selection")),
    }
    return makers[method]()


def state(value):
    """What a freshly built strategy holds, comparable with ==: the library's objects by type and fields."""
    if isinstance(value, torch.Generator):
        return value.get_state().tolist()
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, dict):
        return {k: state(v) for k, v in value.items()}
    if type(value).__module__.startswith("cl_course") and hasattr(value, "__dict__"):
        return type(value).__name__, state(vars(value))
    return value


# Every option a strategy reads away from its default, so that a row passing the wrong one, or none, shows
UNUSUAL = RunConfig(protocol="paper", fisher_labels="sampled", importance_batch_size=17, importance_subset=33, seed=5,
                    scp_slices=9, online_decay=0.5, temperature=3.0, lwf_seen_classes=True, memory_budget=40,
                    memory_selection="reservoir", generator_lr=0.01, generator_iterations=50, batch_size=16,
                    generator_hidden=(20,), generator_latent=7, lambdas={"ewc": 3.0, "si": 2.0, "online-ewc": 7.0})


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("run", [RunConfig(), UNUSUAL], ids=["defaults", "unusual"])
@pytest.mark.parametrize("with_answers", [False, True], ids=["library", "answers"])
def test_every_method_builds_the_strategy_it_built_before(method, run, with_answers):
    answers = {n: b.reference for n, b in BLANKS.items() if not isinstance(b.reference, type)} if with_answers \
        else None
    assert state(make_strategy(method, run, answers)) == state(built_before(method, run, answers))


def test_the_tables_other_modules_export_are_the_ones_written_out_before():
    assert registry.names() == config.METHODS == METHODS + ADDED
    assert config.HW14_METHODS == ("baseline", "ewc", "mas", "si", "rwalk", "scp", "joint")
    assert config.REGULARISED == ("ewc", "mas", "si", "rwalk", "scp")
    assert list(config.HW14_LAMBDAS.items()) == list(HW14_LAMBDAS.items())
    assert list(config.DEFAULT_LAMBDAS.items()) == list((HW14_LAMBDAS | {"online-ewc": 100.0, "imm-mean": 0.0,
                                                                        "imm-mode": 0.0}).items())
    assert tuple(demo.WITH_LAMBDA) == ("ewc", "mas", "si", "rwalk", "scp", "online-ewc", *IMM)
    assert {m: plots.METHOD_COLOURS[m] for m in METHODS} == COLOURS
    assert {m: plots.METHOD_MARKERS[m] for m in METHODS} == MARKERS
    for drawn in (plots.METHOD_COLOURS, plots.METHOD_MARKERS):  # every method told apart in a figure
        assert len(set(drawn.values())) == len(drawn)
    assert table.TABLE_METHODS == ("baseline", "online-ewc", "si", "lwf", "er", "agem", "gem", "dgr", "dgr-distill",
                                   "icarl", "joint")
    assert table.REPLAY == ("er", "agem", "gem", "icarl")
    assert lesson2.METHODS == ("baseline", "ewc", "si", "lwf", "er", "agem", "dgr", "icarl")
    assert registry.names("regularisation") == ("ewc", "mas", "si", "rwalk", "scp", "online-ewc", *IMM)
    assert registry.names("context-specific") == CONTEXT
    assert [m.name for m in registry.ROWS if m.task_identity] == list(CONTEXT)  # they choose their context by task
    assert [m.name for m in registry.ROWS if m.penalty] == ["xdg-si", "xdg-ewc"]


def test_a_method_without_a_lambda_runs_with_none_and_says_zero():
    for method in ("baseline", "joint", "lwf", "er", "dgr", "icarl"):
        assert registry.default_lambda(method) == RunConfig().lam(method) == 0.0
        assert make_strategy(method, RunConfig()).lam == 0.0  # the loop's weight of a penalty it has not got
    with pytest.raises(ValueError, match="has a default lambda but takes none"):
        replace(registry.spec("er"), lam=1.0)


def one_line(error):
    text = str(error.value)
    assert "\n" not in text
    return text


def test_an_unknown_method_is_one_line_naming_the_known_ones():
    expected = f"unknown method 'sgd'; choose from {KNOWN}"
    for look_up in (lambda: registry.spec("sgd"), lambda: registry.default_lambda("sgd"),
                    lambda: RunConfig().lam("sgd"), lambda: make_strategy("sgd", RunConfig())):
        with pytest.raises(ValueError) as e:
            look_up()
        assert one_line(e) == expected  # no longer lambda 0
    with pytest.raises(ValueError) as e:
        RunConfig(methods=("ewc", "sgd")).check()
    assert one_line(e) == f"unknown method(s) sgd; choose from {KNOWN}"
    with pytest.raises(ValueError, match="unknown method 'ewk'"):
        registry.chosen("ewc", "ewk")  # a curricular list with a typo fails where it is written
    with pytest.raises(ValueError, match="unknown family 'regularization'; choose from baseline, upper bound"):
        registry.names("regularization")


def test_a_regulariser_without_a_default_lambda_needs_the_runs_own(monkeypatch, capsys):
    monkeypatch.setitem(registry.REGISTRY, "ewc", replace(registry.spec("ewc"), lam=None))
    expected = ("ewc takes a lambda and has no default: give one (--lambda ewc=VALUE, or "
                "RunConfig(lambdas={'ewc': VALUE}))")
    for look_up in (lambda: registry.default_lambda("ewc"), lambda: RunConfig().lam("ewc"),
                    lambda: RunConfig(methods=("baseline", "ewc")).check(),
                    lambda: make_strategy("ewc", RunConfig())):
        with pytest.raises(ValueError) as e:
            look_up()
        assert one_line(e) == expected  # not lambda 0, which would quietly be the baseline
    RunConfig(methods=("baseline", "mas")).check()  # only a run of ewc needs it
    given = RunConfig(methods=("ewc",), lambdas={"ewc": 5.0}).check()
    assert make_strategy("ewc", given).lam == 5.0
    with pytest.raises(SystemExit) as e:
        main(["run", "--methods", "ewc"])
    assert e.value.code == 2 and capsys.readouterr().err == f"cl-course: error: {expected} (see --help)\n"


@pytest.mark.parametrize("benchmark,scenario", [("split-mnist", "task"), ("split-mnist", "domain"),
                                                ("permuted-mnist", None)])
def test_icarl_outside_class_il_is_refused(benchmark, scenario):
    run = RunConfig(methods=("baseline", "icarl"), benchmark=benchmark, scenario=scenario)
    with pytest.raises(ValueError) as e:
        run.check()
    assert one_line(e) == f"icarl runs in class-IL only: use --scenario class (got {run.the_scenario()}) or drop icarl"
    assert replace(run, scenario="class").check()
    assert RunConfig(methods=("baseline",), benchmark=benchmark, scenario=scenario).check()


def test_the_registry_imports_and_builds_every_strategy_in_the_student_edition(tmp_path):
    """The student edition stubs every solution region: importing the registry and building each strategy must
    not reach one (the stubs raise only when a strategy trains)."""
    from grader.release import student_source
    package = Path(registry.__file__).parent
    shutil.copytree(package, tmp_path / "cl_course", ignore=shutil.ignore_patterns("__pycache__"))
    for py in (tmp_path / "cl_course").rglob("*.py"):
        py.write_text(student_source(py.read_text()))
    assert "BEGIN SOLUTION" not in (package / "registry.py").read_text()
    code = ("from cl_course import EDITION, registry\nfrom cl_course.config import RunConfig\n"
            "from cl_course.methods import make_strategy\n"
            "run = RunConfig(lambdas={'xdg-si': 1.0, 'xdg-ewc': 1.0})  # the two without a default lambda\n"
            "print(EDITION, *(type(make_strategy(m, run)).__name__ for m in registry.names()))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                          env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"})
    assert done.stdout.split() == ["student", "Strategy", "EWC", "MAS", "SI", "RWalk", "SCP", "Joint", "OnlineEWC",
                                   "LwF", "ExperienceReplay", "AGEM", "GEM", "GenerativeReplay", "GenerativeReplay",
                                   "ICaRL", "SeparateNetworks", "ProgressiveNetworks", "XdG", "XdGSI", "XdGEWC", "IMM",
                                   "IMM", "HAT", "PackNet"], done.stderr[-2000:]
