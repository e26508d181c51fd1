"""One place for every knob of a run. Defaults are HW14's."""
from dataclasses import dataclass, field

from . import registry
from .data import BENCHMARKS, SCENARIOS

# The method tables are registry.py's rows; these names are kept for the code, notebooks and tests that import them.
METHODS = registry.names()  # HW14's, then online EWC, LwF, ER, A-GEM, GEM, DGR (+ distillation) and iCaRL
HW14_METHODS = registry.chosen("baseline", "ewc", "mas", "si", "rwalk", "scp", "joint")  # the homework's choice
REGULARISED = tuple(m for m in HW14_METHODS if registry.spec(m).takes_lambda)  # HW14's five with a lambda
FISHER_LABELS = ("exact", "sampled", "empirical", "batch")
MEMORY_SELECTIONS = ("random", "herding", "reservoir")  # replay.Remembering's


@dataclass(frozen=True)
class Protocol:
    """What a protocol means for the regularisers, one field per behaviour (strategies.py reads these,
    never the protocol's name)."""
    importance_data: str    # "seen test sets": every seen task's TEST set, recomputed after each task (HW14's
                            # leakage); "task training data": the finished task's own training data
    accumulate: bool        # Omega of a new task is added to the old one (else it replaces it)
    penalty_scale: float    # penalty = scale * sum Omega (theta - theta*)^2
    fisher_labels: str | None  # EWC's and RWalk's label mode, forced (None: the run's --fisher-labels)
    mas_per_sample: bool    # MAS: mean over samples of |grad| (else |grad| of each batch's mean)
    scp_slicing: str        # SCP: "independent" slices over all the data, or "averaged" (one averaged
                            # direction, fresh directions for every batch)
    si_task_gradient: bool  # SI's W takes the task loss's gradient (the penalty's taken out), else the whole one
    si_clamp: bool          # SI's running Omega is clamped at zero after each task


PROTOCOLS = {
    "hw14": Protocol(importance_data="seen test sets", accumulate=False, penalty_scale=1.0, fisher_labels="batch",
                     mas_per_sample=False, scp_slicing="averaged", si_task_gradient=False, si_clamp=False),
    "paper": Protocol(importance_data="task training data", accumulate=True, penalty_scale=0.5, fisher_labels=None,
                      mas_per_sample=True, scp_slicing="independent", si_task_gradient=True, si_clamp=True),
}

# Average accuracy (%) after task 5 in the HW14 TA notebook.
HW14_TA_RESULTS = {"baseline": 83.72, "ewc": 91.09, "mas": 95.09, "si": 90.43, "rwalk": 93.99, "scp": 92.62}

# HW14's lambdas (the registry's defaults), its baseline and joint at 0. On Split MNIST the table chooses lambdas
# on held-out training images (table.GRIDS; the choice is in benchmarks/results/split_mnist/summary.md).
HW14_LAMBDAS = {m: registry.default_lambda(m) for m in HW14_METHODS}
# ... and every other regulariser's default (online EWC's); a regulariser without one has no entry
DEFAULT_LAMBDAS = HW14_LAMBDAS | {m: registry.spec(m).lam for m in registry.names("regularisation")
                                 if registry.spec(m).lam is not None}


@dataclass
class RunConfig:
    methods: tuple = HW14_METHODS     # strategies to run, one after another, each from the same initial weights
                                      # (joint: every seen task's data together, the upper bound)
    protocol: str = "hw14"            # "hw14": the sample code's importances; "paper": the papers' (PROTOCOLS)
    benchmark: str = "permuted-mnist"  # or "split-mnist" (5 tasks of two digits)
    scenario: str | None = None       # task, domain or class incremental (None: the benchmark's own; Permuted
                                      # MNIST's is domain, HW14's shared head; task gives one head per task)
    tasks: int = 5                    # tasks; Permuted MNIST's task 1 is the identity permutation
    epochs: int = 10                  # epochs per task (passes that end with an evaluation)
    iterations: int | None = None     # batches per epoch (None: one pass over the data); van de Ven &
                                      # Tolias train 2,000 iterations per task: epochs=1, iterations=2000
    hidden: tuple | None = None       # hidden layer sizes (None: the benchmark's; HW14: 1024, 512, 256)
    batch_size: int = 128             # training minibatch
    lr: float = 1e-4                  # Adam, recreated for every task as HW14 does
    lambdas: dict = field(default_factory=dict)  # METHOD -> lambda, overriding the registry's defaults
    subset: int | None = None         # training samples per task (None: all that the data root holds)
    test_subset: int | None = None    # test samples per task (None: all 10,000); also caps HW14's importance data
    seed: int = 1126                  # python/numpy/torch seed, reset before every method (HW14 used 1126)
    permutation_seed: int = 0         # np.random.seed for the pixel permutations, as HW14
    fisher_labels: str = "exact"      # paper-protocol EWC/RWalk Fisher: exact, sampled, empirical or batch
    scp_slices: int = 100             # SCP's random directions L
    memory_budget: int = 1000         # replay memory (ER, A-GEM, GEM, iCaRL): at most this many stored samples in
                                      # all, shared equally among the classes seen so far
    memory_selection: str = "random"  # how ER, A-GEM and GEM fill it: random or herding (class-balanced, when a
                                      # task ends) or reservoir (every training batch); iCaRL always herds
    lwf_seen_classes: bool = False    # class-IL LwF as van de Ven & Tolias's code: softmax over the classes seen,
                                      # distillation over the old classes only (else over every output)
    task_inference: bool = False      # context-specific methods (XdG, HAT, ...) without the task at test time (domain-,
                                      # class-IL): each sample gets the context it is most confident under
    generator_iterations: int | None = None  # DGR's VAE: batches per task in all, the classifier's and then its
                                      # own on random batches of the task (None: only the classifier's, as van de Ven
                                      # & Tolias, whose 2,000 suffice; the quick profile's 40 do not)
    generator_lr: float = 1e-3        # DGR's VAE: Adam's learning rate (van de Ven & Tolias: the classifier's)
    generator_hidden: tuple = (400, 400)  # DGR's VAE: the encoder's hidden layers, mirrored by the decoder
    generator_latent: int = 100       # DGR's VAE: latent units
    online_decay: float = 1.0         # online EWC's gamma: the running Fisher is gamma F + F_task
    drop_transfer: float = 0.0        # IMM's drop-transfer p: a hidden unit's outgoing weights drop to the last
                                      # task's with probability p in a training batch (0: off)
    temperature: float = 2.0          # distillation temperature (LwF, DGR+distill, iCaRL uses sigmoids)
    device: str = "auto"              # auto: CUDA, else MPS, else CPU
    data_root: str | None = None      # None: $CL_COURSE_DATA, else data/ in the repo
    eval_batch_size: int = 8192       # HW14's test batch
    importance_batch_size: int = 8192  # HW14's importance batch (its EWC squares each batch's mean gradient);
                                       # the notebook's profiles use 256 so that per-sample answers fit a GPU
    importance_subset: int | None = None  # `paper`: training samples of each finished task its importance is computed
                                          # from (None: all of them; lesson 1's quick profile: a subset, so that a
                                          # per-sample loop answer stays fast)

    def lam(self, method):
        """The run's lambda for `method`, else its default (registry.default_lambda: 0 for a method without a
        lambda, a ValueError for an unknown method or a regulariser without a default)."""
        return self.lambdas[method] if method in self.lambdas else registry.default_lambda(method)

    def settings(self):
        """The protocol's behaviours (a Protocol)."""
        return PROTOCOLS[self.protocol]

    def the_scenario(self):
        return self.scenario or BENCHMARKS[self.benchmark].scenario

    def hidden_sizes(self):
        return tuple(self.hidden or BENCHMARKS[self.benchmark].hidden)

    def check_generator(self):
        """DGR's VAE options (one-line ValueErrors, as check's)."""
        if self.generator_iterations is not None:
            batches = self.epochs * self.iterations if self.iterations else 1  # the classifier's per task, if fixed
            if self.generator_iterations < batches:
                why = ", the classifier's batches per task, which the VAE trains on anyway" if self.iterations else ""
                raise ValueError(f"generator-iterations must be at least {batches}{why}; got "
                                 f"{self.generator_iterations}")
        if not self.generator_lr > 0:
            raise ValueError(f"generator-lr must be positive, got {self.generator_lr}")
        if not self.generator_hidden or min(self.generator_hidden) < 1:
            raise ValueError(f"generator-hidden must be one or more layer sizes of at least 1, "
                             f"got {self.generator_hidden}")
        if self.generator_latent < 1:
            raise ValueError(f"generator-latent must be at least 1 unit, got {self.generator_latent}")

    def check(self):
        """Raise ValueError with a one-line, actionable message for a bad value."""
        known = registry.names()
        bad = [m for m in self.methods if m not in known]
        if bad or not self.methods:
            raise ValueError(f"unknown method(s) {', '.join(bad) or '(none given)'}; choose from {', '.join(known)}")
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"unknown protocol {self.protocol!r}; choose hw14 or paper")
        if self.benchmark not in BENCHMARKS:
            raise ValueError(f"unknown benchmark {self.benchmark!r}; choose {' or '.join(BENCHMARKS)}")
        if self.scenario is not None and self.scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {self.scenario!r}; choose task, domain or class")
        for m in self.methods:
            if registry.spec(m).task_identity and self.the_scenario() != "task" and not self.task_inference:
                raise ValueError(f"{m} chooses its context by the task, which {self.the_scenario()}-IL does not give "
                                 "at test time: use --scenario task, or --task-inference to infer it (the context "
                                 "it is most confident under)")
            scenarios = registry.spec(m).scenarios
            if self.the_scenario() not in scenarios:  # iCaRL: class-IL only (registry.py says why)
                raise ValueError(f"{m} runs in {' or '.join(scenarios)}-IL only: use --scenario "
                                 f"{' or '.join(scenarios)} (got {self.the_scenario()}) or drop {m}")
        most = BENCHMARKS[self.benchmark].max_tasks
        if most and self.tasks > most:
            raise ValueError(f"{self.benchmark} has {most} tasks, got --tasks {self.tasks}")
        if self.iterations is not None and self.iterations < 1:
            raise ValueError(f"iterations must be at least 1, got {self.iterations}")
        if self.memory_budget < 1:
            raise ValueError(f"memory-budget must be at least 1 sample, got {self.memory_budget}")
        if self.memory_selection not in MEMORY_SELECTIONS:
            raise ValueError(f"unknown memory selection {self.memory_selection!r}; "
                             f"choose {', '.join(MEMORY_SELECTIONS)}")
        if self.lwf_seen_classes and self.the_scenario() != "class":
            raise ValueError(f"lwf-seen-classes is a class-IL variant (a softmax over the classes seen so far): "
                             f"use --scenario class (got {self.the_scenario()}) or drop it")
        self.check_generator()
        if not 0 < self.online_decay <= 1:
            raise ValueError(f"online-decay (gamma) must be in (0, 1], got {self.online_decay}")
        if not 0 <= self.drop_transfer < 1:
            raise ValueError(f"drop-transfer (p) must be in [0, 1), got {self.drop_transfer}")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be positive, got {self.temperature}")
        if self.fisher_labels not in FISHER_LABELS:
            raise ValueError(f"unknown Fisher label mode {self.fisher_labels!r}; "
                             f"choose from {', '.join(FISHER_LABELS)}")
        for name in ("tasks", "epochs", "batch_size", "scp_slices", "eval_batch_size", "importance_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        for name in ("subset", "test_subset", "importance_subset"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name.replace('_', '-')} must be a positive number of samples per task, "
                                 f"got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        for m, v in self.lambdas.items():
            if m not in known:
                raise ValueError(f"--lambda names unknown method {m!r}; choose from {', '.join(known)}")
            if v < 0:
                raise ValueError(f"lambda for {m} must be >= 0, got {v}")
        for m in self.methods:
            self.lam(m)  # a regulariser without a default lambda needs the run's own: one line now, not mid-run
        return self
