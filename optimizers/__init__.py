"""Optimizer backends. Importing this package registers every built-in backend (add one by adding a file
here and importing it below), then, at the first lookup, those that installed packages declare as
``optbench.backends`` entry points (``optimizers.registry.load_plugins``)."""

from optimizers import adamw, gn, muon, soap  # noqa: F401  (registers)
from optimizers.interface import Backend, Costs, StepContext
from optimizers.registry import get_backend, make_hyper, registry

__all__ = ["Backend", "Costs", "StepContext", "get_backend", "make_hyper", "registry"]
