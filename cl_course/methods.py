"""Every method by name: the one table that builds a run's strategy from its config."""
from .generative import GenerativeReplay
from .icarl import ICaRL
from .replay import AGEM, GEM, ExperienceReplay
from .strategies import EWC, MAS, SCP, SI, Baseline, Joint, LwF, OnlineEWC, RWalk


def make_strategy(method, config, answers=None):
    """The strategy for `method` with the run's protocol, lambda and options; `answers`: the
    notebook's functions by library name (blanks.BLANKS), used in place of the library's."""
    lam, seed = config.lam(method), config.seed
    regulariser = dict(protocol=config.protocol, batch_size=config.importance_batch_size, seed=seed, answers=answers)
    memory = dict(per_class=config.buffer_per_class, seed=seed)
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
        "lwf": lambda: LwF(config.temperature, distillation=(answers or {}).get("distillation_loss")),
        "er": lambda: ExperienceReplay(**memory),
        "agem": lambda: AGEM(**memory),
        "gem": lambda: GEM(**memory),
        "dgr": lambda: GenerativeReplay(seed=seed),
        "dgr-distill": lambda: GenerativeReplay(seed=seed, temperature=config.temperature),
        "icarl": lambda: ICaRL(**memory, herding=(answers or {}).get("herding_selection")),
    }
    return makers[method]()
