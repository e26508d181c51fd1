"""Every method the library runs, one row each: its family, how its Strategy is built, its default lambda, the
scenarios it runs in, and its colour and marker in every figure. The CLI, RunConfig.check, make_strategy, the demo,
the plots and the Split MNIST table read these rows; the name tables they export (config.METHODS, REGULARISED,
DEFAULT_LAMBDAS, plots.METHOD_COLOURS, ...) are built from them.

Adding a method: write its Strategy in its own module (a regulariser: a Regulariser subclass), then add one row
to ROWS with its name, family, the class's import path, the keyword arguments it takes from the run's config
(`options`), a colour and a marker no other row uses, and, if it differs from the defaults, its lambda (a
regulariser: its default, or None when every run must give one), the scenarios it runs in and whether it needs the
task's identity at test time. The CLI then accepts it, RunConfig checks it, make_strategy builds it and the
figures draw it. HW14's list, the Split MNIST table's columns and lesson 2's list are curricular choices, not
derived: add it there only if that lesson or table should run it.
"""
import importlib
from collections.abc import Callable
from dataclasses import dataclass

from .data import SCENARIOS

# baseline: plain fine-tuning; upper bound: joint training on every seen task's data; regularisation: a penalty
# on moving important weights, weighted by lambda (the only family with a lambda); distillation: the previous
# model's outputs as soft targets; replay: stored samples of old tasks; generative replay: generated ones
# context-specific: parts of the network (units, weights, columns) given to each task, chosen by the task
FAMILIES = ("baseline", "upper bound", "regularisation", "distillation", "replay", "generative replay",
            "context-specific")


@dataclass(frozen=True)
class Method:
    """One method's row."""
    name: str           # what --methods, RunConfig.methods and results.json call it
    family: str         # one of FAMILIES
    strategy: str       # "module:Class" in cl_course, imported when first built: strategies.py imports config,
                        # which imports this module, so importing the classes here would be a circle
    options: Callable   # (config, answers) -> the class's keyword arguments, lam aside; answers: the notebook's
                        # functions by library name (blanks.BLANKS), or None
    colour: str         # in every figure (plots.method_colour): the reference runs neutral (baseline grey, joint
                        # black), HW14's regularisers tab10's saturated colours
    marker: str
    lam: float | None = None      # a regulariser's default lambda (None: every run must give one); other
                                  # families take none
    scenarios: tuple = SCENARIOS  # where it runs; RunConfig.check refuses the others
    task_identity: bool = False   # needs the task's identity at test time (context-specific methods): other
                                  # scenarios only with RunConfig.task_inference
    penalty: bool = False         # a regulariser's penalty on top of another family's method (xdg-si): a lambda

    def __post_init__(self):  # a wrong row fails at import, not quietly: a lambda nothing reads, a lost scenario
        if self.family not in FAMILIES or not self.scenarios or not set(self.scenarios) <= set(SCENARIOS):
            raise ValueError(f"method {self.name}: unknown family {self.family!r} or scenarios {self.scenarios}")
        if self.lam is not None and not self.takes_lambda:
            raise ValueError(f"method {self.name} has a default lambda but takes none ({self.family})")

    @property
    def takes_lambda(self):
        return self.family == "regularisation" or self.penalty

    def build(self, config, answers=None):
        """The Strategy for the run `config`, with the notebook's `answers` in place of the library's functions."""
        module, cls = self.strategy.split(":")
        strategy = getattr(importlib.import_module(f"{__package__}.{module}"), cls)
        lam = {"lam": config.lam(self.name)} if self.takes_lambda else {}
        return strategy(**lam, **self.options(config, answers))


def _no_options(config, answers):
    return {}


def _regulariser(config, answers):
    return dict(protocol=config.protocol, batch_size=config.importance_batch_size, seed=config.seed,
                answers=answers, samples=config.importance_subset)


def _fisher(config, answers):  # EWC's and RWalk's: their Fisher's label mode
    return _regulariser(config, answers) | dict(fisher_labels=config.fisher_labels)


def _memory(config, answers):
    return dict(budget=config.memory_budget, seed=config.seed)


def _filled(config, answers):  # ER, A-GEM and GEM: how the memory is filled (iCaRL always herds)
    return _memory(config, answers) | dict(selection=config.memory_selection,
                                           slots=(answers or {}).get("reservoir_slots"))


def _gates(config, answers):  # XdG's: its gates drawn from the run's seed; the task inferred or given
    return dict(gate_seed=config.seed, infer_task=config.task_inference, answers=answers)


def _networks(config, answers):  # separate networks' and progressive columns': made from the run's seed
    return dict(seed=config.seed, infer_task=config.task_inference, answers=answers)


def _imm(config, answers):  # mode-IMM's Fisher: as the regularisers', on the task's training data
    return dict(batch_size=config.importance_batch_size, samples=config.importance_subset, seed=config.seed,
                answers=answers, drop=config.drop_transfer)


def _generator(config, answers):
    return dict(seed=config.seed, lr=config.generator_lr, iterations=config.generator_iterations,
                batch_size=config.batch_size, hidden=tuple(config.generator_hidden), latent=config.generator_latent)


# In the order the CLI lists them: HW14's six and joint, then the later lessons'. The default lambdas of HW14's
# regularisers are HW14's (they suit its importances: batch-mean gradients, no 1/2 in the penalty); on Split MNIST
# the table chooses its own on held-out images (table.GRIDS).
ROWS = (
    Method("baseline", "baseline", "strategies:Baseline", _no_options, "#7f7f7f", "o"),
    Method("ewc", "regularisation", "strategies:EWC", _fisher, "#1f77b4", "s", lam=100.0),
    Method("mas", "regularisation", "strategies:MAS", _regulariser, "#ff7f0e", "^", lam=0.1),
    Method("si", "regularisation", "strategies:SI", _regulariser, "#2ca02c", "D", lam=1.0),
    Method("rwalk", "regularisation", "strategies:RWalk", _fisher, "#d62728", "v", lam=100.0),
    Method("scp", "regularisation", "strategies:SCP", lambda c, a: _regulariser(c, a) | dict(slices=c.scp_slices),
           "#9467bd", "P", lam=100.0),
    Method("joint", "upper bound", "strategies:Joint", _no_options, "#000000", "*"),
    Method("online-ewc", "regularisation", "strategies:OnlineEWC",
           lambda c, a: _fisher(c, a) | dict(decay=c.online_decay), "#aec7e8", "H", lam=100.0),
    Method("lwf", "distillation", "strategies:LwF",
           lambda c, a: dict(temperature=c.temperature, distillation=(a or {}).get("distillation_loss"),
                             seen_classes_only=c.lwf_seen_classes), "#8c564b", "<"),
    Method("er", "replay", "replay:ExperienceReplay", _filled, "#e377c2", "X"),
    Method("agem", "replay", "replay:AGEM", _filled, "#bcbd22", ">"),
    Method("gem", "replay", "replay:GEM", _filled, "#dbdb8d", "h"),
    Method("dgr", "generative replay", "generative:GenerativeReplay", _generator, "#17becf", "p"),
    Method("dgr-distill", "generative replay", "generative:GenerativeReplay",
           lambda c, a: _generator(c, a) | dict(temperature=c.temperature), "#9edae5", "d"),
    # iCaRL classifies by the nearest of every class's mean, so it needs every class in one head: class-IL only
    Method("icarl", "replay", "icarl:ICaRL",
           lambda c, a: _memory(c, a) | dict(herding=(a or {}).get("herding_selection")), "#c49c94", "8",
           scenarios=("class",)),
    # a network of its own per task (the shared MLP's parameters split among the tasks), or a column per task that
    # reads the earlier ones: chosen by the task, so task-IL, or any scenario with --task-inference
    Method("separate", "context-specific", "separate:SeparateNetworks",
           lambda c, a: _networks(c, a) | dict(tasks=c.tasks), "#e7ba52", "$n$", task_identity=True),
    Method("progressive", "context-specific", "progressive:ProgressiveNetworks", _networks, "#de9ed6", "$c$",
           task_identity=True),
    # XdG needs the task to choose its gate: task-IL, or any scenario with --task-inference. Combined with SI or
    # EWC (Masse et al.'s best) it takes their lambda, with no default: the right one depends on the benchmark
    Method("xdg", "context-specific", "xdg:XdG", _gates, "#ffbb78", "$x$", task_identity=True),
    Method("xdg-si", "context-specific", "xdg:XdGSI", lambda c, a: _regulariser(c, a) | _gates(c, a),
           "#98df8a", "$s$", task_identity=True, penalty=True),
    Method("xdg-ewc", "context-specific", "xdg:XdGEWC", lambda c, a: _fisher(c, a) | _gates(c, a),
           "#ff9896", "$e$", task_identity=True, penalty=True),
    # IMM merges its task networks into one that answers every task: domain-IL. Its lambda is L2-transfer's
    # (0: weight-transfer only, as Lee et al.'s plain mean- and mode-IMM); RunConfig.drop_transfer its drop-transfer
    Method("imm-mean", "regularisation", "imm:IMM", _imm, "#f7b6d2", "$m$", lam=0.0,
           scenarios=("domain",)),
    Method("imm-mode", "regularisation", "imm:IMM", lambda c, a: _imm(c, a) | dict(mode=True), "#c7c7c7", "$M$",
           lam=0.0, scenarios=("domain",)),
    # HAT's gates and PackNet's masks are chosen by the task: task-IL, or any scenario with --task-inference
    Method("hat", "context-specific", "hat:HAT",
           lambda c, a: dict(batch_size=c.batch_size, iterations=c.iterations, seed=c.seed,
                             infer_task=c.task_inference, answers=a), "#6b6ecf", "$h$", task_identity=True),
    Method("packnet", "context-specific", "packnet:PackNet",
           lambda c, a: dict(share=1 / c.tasks, lr=c.lr, batch_size=c.batch_size, seed=c.seed,
                             infer_task=c.task_inference, answers=a), "#c5b0d5", "$p$", task_identity=True),
)
REGISTRY = {m.name: m for m in ROWS}


def spec(name):
    """The row of `name`; a one-line ValueError naming the known methods for any other name."""
    if name not in REGISTRY:
        raise ValueError(f"unknown method {name!r}; choose from {', '.join(REGISTRY)}")
    return REGISTRY[name]


def names(family=None):
    """Every method's name in the registry's order, or those of one family."""
    if family is not None and family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; choose from {', '.join(FAMILIES)}")
    return tuple(m.name for m in REGISTRY.values() if family is None or m.family == family)


def default_lambda(name):
    """The lambda a run of `name` uses when it gives none: its default, or 0 (no penalty) for a method that
    takes no lambda. A regulariser without a default has none to fall back on: a one-line ValueError."""
    method = spec(name)
    if not method.takes_lambda:
        return 0.0
    if method.lam is None:
        raise ValueError(f"{name} takes a lambda and has no default: give one (--lambda {name}=VALUE, or "
                         f"RunConfig(lambdas={{{name!r}: VALUE}}))")
    return method.lam


def chosen(*methods):
    """A curricular list of methods (HW14's, a table's columns), checked here so that a typo fails at import."""
    for name in methods:
        spec(name)
    return methods

