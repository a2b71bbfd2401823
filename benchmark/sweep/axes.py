"""Values the tuner generates beyond a declared grid: written to three significant digits, and taken only
where the backend takes them (its declared valid range, checked as a value from the command line is)."""

from __future__ import annotations

import math

from optimizers.hyper import valid_values
from optimizers.registry import make_hyper


def round3(value: float) -> float:
    """Three significant digits: what a generated grid point is written with."""
    return float(f"{value:.3g}")


def inside_range(backend, key: str, edge: float, value: float, side: str) -> tuple[float | None, str]:
    """``value`` (whole for an integer setting) if the backend takes it for ``key``, checked as a value from the
    command line is; else the point halfway from ``edge`` to the bound of the declared valid range on
    ``side``, if that is a new value it takes; else None. With what was done, in words."""
    whole = isinstance(getattr(backend.Hyper(), key), int)

    def takes(v) -> bool:
        try:
            make_hyper(backend, {key: v})
        except ValueError:
            return False
        return True

    value = round(value) if whole else value
    if takes(value):
        return value, ""
    valid = valid_values(backend.Hyper, key)
    bound = valid.bound("high" if side == "top" else "low") if valid is not None else math.inf
    halfway = None if math.isinf(bound) else (edge + bound) / 2
    halfway = None if halfway is None else round(halfway) if whole else round3(halfway)
    if halfway is not None and halfway != edge and takes(halfway):
        return halfway, f"{value:g} is outside its valid range {valid}: halfway to its bound instead"
    return None, f"the edge of its valid range {valid}" if valid is not None else f"{value:g} is not valid"
