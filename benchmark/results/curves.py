"""What a run's evaluation curve says: the step at which it crosses a target (interpolated, with the
bracket it lies in; censored when never reached), a cumulative counter at a fractional step, and which of
two runs is better. Used by the trial's record, the suite's selection and the report alike."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def crossing(steps: Sequence[float], losses: Sequence[float], target: float) -> tuple[float, float] | None:
    """(steps to ``target``, width of its bracket), or None (censored) if never reached.

    The step is the first evaluation at which ``loss <= target``, linearly interpolated between it and
    the evaluation before; the bracket is those two evaluations, within which the true crossing lies
    (0 wide when the first evaluation already reaches it). Non-finite losses never count as reaching."""
    prev_s, prev_l = None, None
    for s, loss in zip(steps, losses):
        if loss is not None and math.isfinite(loss) and loss <= target:
            if prev_s is None:
                return float(s), 0.0
            width = float(s - prev_s)
            if prev_l is None or not math.isfinite(prev_l) or prev_l <= loss:
                return float(s), width
            return float(prev_s + (prev_l - target) / (prev_l - loss) * (s - prev_s)), width
        prev_s, prev_l = s, loss
    return None


def steps_to_target(steps: Sequence[float], losses: Sequence[float], target: float) -> float | None:
    """Steps to ``target`` (see ``crossing``); None when censored."""
    found = crossing(steps, losses, target)
    return None if found is None else found[0]


def value_at_step(steps: Sequence[float], values: Sequence[float], at: float | None) -> float | None:
    """A cumulative counter (compute, time, tokens) at a fractional step, linearly interpolated between
    evaluations; None when ``at`` is None (censored)."""
    if at is None or not steps:
        return None
    return float(np.interp(at, np.asarray(steps, float), np.asarray(values, float)))


def selection_key(run: dict, targets: tuple[float, ...]) -> tuple:
    """Lower is better: steps to each target, tightest first (censored = inf), then final loss."""
    steps = run.get("steps_to_target") or {}
    key = []
    for t in sorted(targets):
        s = steps.get(f"{t:g}")
        key.append(math.inf if s is None else float(s))
    final = run.get("final_val_loss")
    diverged = run.get("status") == "diverged" or final is None or not math.isfinite(final)
    return (*key, math.inf if diverged else float(final))
