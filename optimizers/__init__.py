"""Optimizer backends. Importing this package registers every backend; add one by adding a file here
and importing it below."""

from optimizers import adamw, gn, muon, soap  # noqa: F401  (registers)
from optimizers.interface import Backend, Costs, StepContext
from optimizers.registry import get_backend, make_hyper, registry

__all__ = ["Backend", "Costs", "StepContext", "get_backend", "make_hyper", "registry"]
