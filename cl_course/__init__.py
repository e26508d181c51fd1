"""cl-course: continual learning on Permuted MNIST (after NTU ML 2021 HW14) and Split MNIST."""
from .config import HW14_LAMBDAS, HW14_TA_RESULTS, METHODS, RunConfig
from .data import DataError, Task, permuted_mnist, split_mnist
from .metrics import average_accuracy, backward_transfer, forgetting, forward_transfer
from .generative import GenerativeReplay
from .icarl import ICaRL
from .methods import make_strategy
from .model import MLP
from .replay import AGEM, GEM, ExperienceReplay
from .strategies import EWC, MAS, SCP, SI, Baseline, Joint, LwF, OnlineEWC, Replay, RWalk, Strategy
from .train import evaluate, fit, run_methods, select_device

__all__ = ["HW14_LAMBDAS", "HW14_TA_RESULTS", "METHODS", "RunConfig", "DataError", "Task", "permuted_mnist",
           "split_mnist", "average_accuracy", "backward_transfer", "forgetting", "forward_transfer", "MLP", "EWC",
           "MAS", "SCP", "SI", "Baseline", "RWalk", "Strategy", "make_strategy", "Joint", "LwF", "OnlineEWC",
           "Replay", "GenerativeReplay", "ICaRL", "AGEM", "GEM", "ExperienceReplay", "evaluate", "fit", "run_methods",
           "select_device"]
__version__ = "0.1.0"
EDITION = "instructor"  # the student wheel says "student" (grader/release.py rewrites this line)
