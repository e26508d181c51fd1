"""Every method by name: a run's strategy built from its config, as the method's registry row says."""
from . import registry


def make_strategy(method, config, answers=None):
    """The strategy for `method` with the run's protocol, lambda and options; `answers`: the
    notebook's functions by library name (blanks.BLANKS), used in place of the library's."""
    return registry.spec(method).build(config, answers)
