"""The Gauss-Newton line search (DESIGN §2): the true loss at θ0 + s·d for candidate scales
s ∈ {(1/√2)^i : i < ls_range} (and s = 0 when rejecting is allowed), on the same fresh micro-batches for
every candidate; the best s wins, the largest among equals."""

from __future__ import annotations

import math

import torch
from torch.func import functional_call

from optimizers.interface import StepContext, split_batch


def candidates(ls_range: int, reject: bool = False) -> list[float]:
    scales = [(1 / math.sqrt(2)) ** i for i in range(ls_range)]
    return [*scales, 0.0] if reject else scales


def searches(cands: list[float]) -> bool:
    """False when the only candidate is the full step: no line search runs and nothing is drawn."""
    return not (len(cands) == 1 and cands[0] == 1.0)


@torch.no_grad()
def line_search(ctx: StepContext, anchor: dict[str, torch.Tensor], direction: dict[str, torch.Tensor],
                cands: list[float], n_batches: int, loss=None) -> tuple[float, list[float]]:
    """(best scale, mean loss of every candidate) over ``n_batches`` fresh micro-batches (counted).
    ``loss(params, x, y)`` replaces the host's loss on the model's logits (GN: the same cross-entropy
    with the head's logits in chunks)."""
    if not searches(cands):
        return 1.0, []
    if loss is None:
        def loss(params, x, y):
            return ctx.loss_fn(functional_call(ctx.model, params, (x,)), y)
    batches = ctx.draw(n_batches)
    losses = torch.zeros(len(cands), dtype=torch.float64)
    for j, s in enumerate(cands):
        params = {n: anchor[n] + s * direction[n] for n in anchor}
        for batch in batches:
            x, y = split_batch(batch)
            losses[j] += loss(params, x, y).double().cpu()
        ctx.costs.add(forward=len(batches))
    losses = ctx.reducer.mean_(losses) / len(batches)
    finite = torch.where(torch.isfinite(losses), losses, torch.full_like(losses, math.inf))
    if not torch.isfinite(finite).any():
        return 0.0, losses.tolist()  # every candidate overflowed: do not move
    return cands[int(torch.argmin(finite))], losses.tolist()  # the first (largest) s among equals
