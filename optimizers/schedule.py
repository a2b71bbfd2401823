"""The one learning-rate schedule: a linear warmup, then a cosine decay, a constant, or WSD (constant, then a
linear cooldown to 0 at the end of the budget). First-order backends scale their learning rate by it per outer
step; Gauss-Newton's inner solver per inner step (restarted every outer step, or once over the whole run), and
its outer step by it where ``outer_schedule`` asks."""

from __future__ import annotations

import math

SHAPES = ("cosine", "constant", "wsd")


def cooldown_steps(fraction: float, budget: int) -> int:
    """The length of WSD's cooldown: the last ``round(fraction * budget)`` steps of a budget of ``budget``."""
    return int(round(fraction * budget))


def warmup_then_decay(step: int, total: int, warmup: int = 0, *, shape: str = "cosine", final: float = 0.0,
                      start: float | None = None, cooldown: int = 0) -> float:
    """Multiplier of the peak learning rate at ``step`` (0-based) of ``total``.

    Warmup, the first ``warmup`` steps: with ``start=None`` the multiplier is ``(step + 1) / warmup``, a
    ramp from zero that never takes a zero step and reaches 1 on the last warmup step; with a ``start``
    it rises from ``start`` at step 0 towards 1 at step ``warmup`` (optax's linear warmup, which the
    Gauss-Newton release uses for its global inner schedule).
    Then ``cosine`` decays from 1 to ``final`` over the remaining steps, or ``constant`` stays at 1.
    ``wsd`` stays at 1 until its last ``cooldown`` steps before ``total``, then falls linearly to 0 at step
    ``total``: ``(total - step) / (cooldown + 1)``, so that every cooldown step is below 1 and none is 0 (a
    one-step cooldown halves the rate). Its warmup is the lesser of the two ramps where they overlap, so that
    the steps before the cooldown never depend on ``total``: a run of any budget takes the same first steps.
    """
    if shape == "wsd":
        return min(_warmup(step, warmup, start), _cooldown(step, total, cooldown))
    if step < warmup:
        return _warmup(step, warmup, start)
    if shape == "constant":
        return 1.0
    if shape == "cosine":
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return final + (1 - final) * 0.5 * (1 + math.cos(math.pi * progress))
    raise ValueError(f"unknown schedule {shape!r}; valid: {', '.join(SHAPES)}")


def _warmup(step: int, warmup: int, start: float | None) -> float:
    if step >= warmup:
        return 1.0
    return (step + 1) / warmup if start is None else start + (1 - start) * step / warmup


def _cooldown(step: int, total: int, cooldown: int) -> float:
    if step < total - cooldown:
        return 1.0
    return max(0.0, (total - step) / (cooldown + 1))
