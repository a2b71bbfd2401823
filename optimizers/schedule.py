"""The one learning-rate schedule: a linear warmup, then a cosine decay or a constant. First-order
backends scale their learning rate by it per outer step; Gauss-Newton's inner solver per inner step
(restarted every outer step, or once over the whole run)."""

from __future__ import annotations

import math

SHAPES = ("cosine", "constant")


def warmup_then_decay(step: int, total: int, warmup: int = 0, *, shape: str = "cosine", final: float = 0.0,
                      start: float | None = None) -> float:
    """Multiplier of the peak learning rate at ``step`` (0-based) of ``total``.

    Warmup, the first ``warmup`` steps: with ``start=None`` the multiplier is ``(step + 1) / warmup``, a
    ramp from zero that never takes a zero step and reaches 1 on the last warmup step; with a ``start``
    it rises from ``start`` at step 0 towards 1 at step ``warmup`` (optax's linear warmup, which the
    Gauss-Newton release uses for its global inner schedule).
    Then ``cosine`` decays from 1 to ``final`` over the remaining steps, or ``constant`` stays at 1.
    """
    if step < warmup:
        return (step + 1) / warmup if start is None else start + (1 - start) * step / warmup
    if shape == "constant":
        return 1.0
    if shape == "cosine":
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return final + (1 - final) * 0.5 * (1 + math.cos(math.pi * progress))
    raise ValueError(f"unknown schedule {shape!r}; valid: {', '.join(SHAPES)}")
