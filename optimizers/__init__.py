"""Optimizer backends. Importing this package registers every built-in backend (add one by adding a file
under first_order/ or gauss_newton/ and importing it below), then, at the first lookup, those that installed
packages declare as ``optbench.backends`` entry points (``optimizers.registry.load_plugins``)."""

from optimizers.first_order import adamw, muon, soap  # noqa: F401  (registers)
from optimizers.gauss_newton import backends  # noqa: F401  (registers)
from optimizers.interface import Backend, Costs, StepContext
from optimizers.registry import get_backend, make_hyper, registry

__all__ = ["Backend", "Costs", "StepContext", "get_backend", "make_hyper", "registry"]
