"""Every method by name: the one table that builds a run's strategy from its config."""
from .generative import GenerativeReplay
from .icarl import ICaRL
from .replay import AGEM, GEM, ExperienceReplay
from .strategies import EWC, MAS, SCP, SI, Baseline, Joint, LwF, OnlineEWC, RWalk


def make_strategy(method, config, answers=None):
    """The strategy for `method` with the run's protocol, lambda and options; `answers`: the
    notebook's functions by library name (blanks.BLANKS), used in place of the library's."""
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
