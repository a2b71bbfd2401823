"""What a missing value means in the report, decided here once for every table, figure and statistic.

A record stores a target never reached as ``null``; in a frame pandas holds it, and any field a record
does not have (an older record's), as NaN. All of these are the same to the report: *no value*. For steps
to a target, and for the compute and time to it, no value means the run never got there, **censored**:
medians, intervals, ratios and orderings count it as +inf (``as_inf``), never as a number, and the tables
hold it as None (``as_float``, ``clean``), shown as "—", "≥ budget" or "censored". An infinite value
(an interval bound most of whose resamples were censored) is a value, not a missing one.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd


def is_missing(v) -> bool:
    """No value: None, NaN (Python's, numpy's, or pandas' missing marks)."""
    if v is None or v is pd.NA or v is pd.NaT:
        return True
    return isinstance(v, (float, np.floating)) and math.isnan(v)


def clean(v):
    """``v`` as it is, or None where it is missing: for JSON, and for text that shows "—" for nothing."""
    return None if is_missing(v) else v


def as_float(v) -> float | None:
    """A number as a float, None where it is missing (for steps: censored)."""
    return None if is_missing(v) else float(v)


def as_floats(values) -> list[float | None]:
    """``as_float`` of each: a column as the statistics take it (None: censored, +inf to them)."""
    return [as_float(v) for v in values]


def as_inf(v) -> float:
    """A number as a float, +inf where it is missing: a censored count in a median, a ratio or an order."""
    return math.inf if is_missing(v) else float(v)
