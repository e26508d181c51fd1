"""One place for every knob of a run. Defaults are HW14's."""
from dataclasses import dataclass, field

METHODS = ("baseline", "ewc", "mas", "si", "rwalk", "scp", "joint")
REGULARISED = ("ewc", "mas", "si", "rwalk", "scp")  # the methods with a lambda: HW14's five
PROTOCOLS = ("hw14", "paper")
FISHER_LABELS = ("exact", "sampled", "empirical", "batch")

# Average accuracy (%) after task 5 in the HW14 TA notebook.
HW14_TA_RESULTS = {"baseline": 83.72, "ewc": 91.09, "mas": 95.09, "si": 90.43, "rwalk": 93.99, "scp": 92.62}

# HW14's lambdas. They suit its importances (batch-mean gradients, no 1/2 in the penalty).
HW14_LAMBDAS = {"baseline": 0.0, "ewc": 100.0, "mas": 0.1, "si": 1.0, "rwalk": 100.0, "scp": 100.0, "joint": 0.0}


@dataclass
class RunConfig:
    methods: tuple = METHODS          # strategies to run, one after another, each from the same initial weights
                                      # (joint: every seen task's data together, the upper bound)
    protocol: str = "hw14"            # "hw14": the sample code's importances; "paper": the papers' (see strategies.py)
    tasks: int = 5                    # Permuted MNIST tasks; task 1 is the identity permutation
    epochs: int = 10                  # epochs per task
    batch_size: int = 128             # training minibatch
    lr: float = 1e-4                  # Adam, recreated for every task as HW14 does
    lambdas: dict = field(default_factory=dict)  # METHOD -> lambda, overriding HW14_LAMBDAS
    subset: int | None = None         # training samples per task (None: all that the data root holds)
    test_subset: int | None = None    # test samples per task (None: all 10,000); also caps HW14's importance data
    seed: int = 1126                  # python/numpy/torch seed, reset before every method (HW14 used 1126)
    permutation_seed: int = 0         # np.random.seed for the pixel permutations, as HW14
    fisher_labels: str = "exact"      # paper-protocol EWC/RWalk Fisher: exact, sampled, empirical or batch
    scp_slices: int = 100             # SCP's random directions L
    multi_head: bool = False          # one output head per task instead of HW14's shared head
    device: str = "auto"              # auto: CUDA, else MPS, else CPU
    data_root: str | None = None      # None: $CL_COURSE_DATA, else data/ in the repo
    eval_batch_size: int = 8192       # HW14's test batch
    importance_batch_size: int = 8192  # HW14's importance batch (its EWC squares each batch's mean gradient);
                                       # the notebook's profiles use 256 so that per-sample answers fit a GPU

    def lam(self, method):
        return self.lambdas.get(method, HW14_LAMBDAS[method])

    def check(self):
        """Raise ValueError with a one-line, actionable message for a bad value."""
        bad = [m for m in self.methods if m not in METHODS]
        if bad or not self.methods:
            raise ValueError(f"unknown method(s) {', '.join(bad) or '(none given)'}; choose from {', '.join(METHODS)}")
        if "joint" in self.methods and self.multi_head:
            raise ValueError("joint training mixes the tasks in each batch, which needs the shared head: "
                             "drop joint from the methods or drop --multi-head")
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"unknown protocol {self.protocol!r}; choose hw14 or paper")
        if self.fisher_labels not in FISHER_LABELS:
            raise ValueError(f"unknown Fisher label mode {self.fisher_labels!r}; "
                             f"choose from {', '.join(FISHER_LABELS)}")
        for name in ("tasks", "epochs", "batch_size", "scp_slices", "eval_batch_size", "importance_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        for name in ("subset", "test_subset"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name.replace('_', '-')} must be a positive number of samples per task, "
                                 f"got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        for m, v in self.lambdas.items():
            if m not in METHODS:
                raise ValueError(f"--lambda names unknown method {m!r}; choose from {', '.join(METHODS)}")
            if v < 0:
                raise ValueError(f"lambda for {m} must be >= 0, got {v}")
        return self
