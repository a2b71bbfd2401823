"""The Gauss-Newton line search (DESIGN §2): the true loss at θ0 + s·d for candidate scales
s ∈ {(1/√2)^i : i < ls_range} (and s = 0 when rejecting is allowed), on the same fresh micro-batches for
every candidate; the best s wins, the largest among equals.

Rules: ``all`` (the release) evaluates every candidate; ``first_worse`` (cheaper, a recorded setting)
evaluates the positive scales from the largest down and stops after the first one that does not lower the
loss, so a step that takes the full scale costs two candidates instead of ``ls_range`` (the candidate
s = 0, when present, is always evaluated). On a loss that is unimodal along the line both pick the same
scale; ``bench`` measures how often a real run's losses are."""

from __future__ import annotations

import math

import torch
from torch.func import functional_call

from optimizers.interface import StepContext, split_batch


def candidates(ls_range: int, reject: bool = False) -> list[float]:
    scales = [(1 / math.sqrt(2)) ** i for i in range(ls_range)]
    return [*scales, 0.0] if reject else scales


LS_RULES = ("all", "first_worse")


def searches(cands: list[float]) -> bool:
    """False when the only candidate is the full step: no line search runs and nothing is drawn."""
    return not (len(cands) == 1 and cands[0] == 1.0)


def rule_choice(cands: list[float], losses: list[float], rule: str) -> float:
    """The scale ``rule`` picks when every candidate's loss is known (``losses``, as the rule ``all``
    records them): how a run with the release's rule tells what the cheaper one would have chosen."""
    seen = list(range(len(cands)))
    if rule == "first_worse":
        seen, best = [], math.inf
        for j in (j for j, s in enumerate(cands) if s > 0):
            seen.append(j)
            if not losses[j] < best:
                break
            best = losses[j]
        seen += [j for j, s in enumerate(cands) if s == 0]
    finite = {j: losses[j] for j in seen if math.isfinite(losses[j])}
    return cands[min(finite, key=lambda j: (finite[j], j))] if finite else 0.0


@torch.no_grad()
def line_search(ctx: StepContext, anchor: dict[str, torch.Tensor], direction: dict[str, torch.Tensor],
                cands: list[float], n_batches: int, loss=None, rule: str = "all") -> tuple[float, list[float]]:
    """(best scale, mean loss of every candidate: NaN for those the rule skipped) over ``n_batches`` fresh
    micro-batches (counted). ``loss(params, x, y)`` replaces the host's loss on the model's logits (GN: the
    same cross-entropy with the head's logits in chunks)."""
    if rule not in LS_RULES:
        raise ValueError(f"unknown line-search rule {rule!r}; valid: {', '.join(LS_RULES)}")
    if not searches(cands):
        return 1.0, []
    if loss is None:
        def loss(params, x, y):
            return ctx.loss_fn(functional_call(ctx.model, params, (x,)), y)
    batches = ctx.draw(n_batches)

    def mean_loss(s: float) -> float:
        params = {n: anchor[n] + s * direction[n] for n in anchor}
        total = torch.zeros(1, dtype=torch.float64)
        for batch in batches:
            x, y = split_batch(batch)
            total += loss(params, x, y).double().cpu()
        ctx.costs.add(forward=len(batches))
        return float(ctx.reducer.mean_(total)) / len(batches)  # every rank takes the same decisions

    losses = [math.nan] * len(cands)
    best = math.inf
    for j, s in enumerate(cands):
        if s == 0.0 and rule == "first_worse":
            continue  # evaluated below, whatever the positive scales did
        losses[j] = mean_loss(s)
        if rule == "first_worse" and not losses[j] < best:
            break
        best = min(best, losses[j])
    if rule == "first_worse" and 0.0 in cands:
        losses[cands.index(0.0)] = mean_loss(0.0)
    finite = [v if math.isfinite(v) else math.inf for v in losses]
    if min(finite) == math.inf:
        return 0.0, losses  # every candidate overflowed: do not move
    return cands[finite.index(min(finite))], losses  # the first (largest) s among equals
