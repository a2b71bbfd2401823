"""The Gauss-Newton inner solver's pieces: its optimizer (by name, from a small table; the release's
Muon chain is built by the same function as the Muon backend), its learning-rate schedule and its
gradient clipping per group."""

from __future__ import annotations

import torch
from torch import nn

from optimizers.first_order.muon import MuonHyper, muon_chain
from optimizers.partition import MuonSplit, check_ownership, optimizer_groups
from optimizers.schedule import warmup_then_decay


def _muon(split, every, hp):
    # Muon's own weight decay stays 0 as in the release (torch's default would be 0.1); the Adam parts
    # take the inner betas and weight decay.
    return muon_chain(*split, MuonHyper(lr=hp.lr, momentum=hp.momentum, ns_steps=hp.ns_steps, weight_decay=0.0,
                                        adam_lr=hp.adam_lr, adam_beta1=hp.beta1, adam_beta2=hp.beta2,
                                        adam_weight_decay=hp.weight_decay))


def _adamw(split, every, hp):
    return [torch.optim.AdamW(every, lr=hp.lr, betas=(hp.beta1, hp.beta2), weight_decay=hp.weight_decay)]


def _sgd(split, every, hp):
    return [torch.optim.SGD(every, lr=hp.lr)]


# name -> builder((hidden matrices, embedding and head, 1-D parameters), every parameter in model order, hp)
INNER_OPTIMIZERS = {"muon": _muon, "adamw": _adamw, "sgd": _sgd}
INNER_SCHEDULES = ("cosine_restart", "global_cosine", "constant")


def build_inner_optimizers(hp, leaves: dict[str, nn.Parameter], split: MuonSplit) -> list[torch.optim.Optimizer]:
    """The inner optimizers over ``leaves`` (name -> inner iterate, in model order), split by role as the
    model's parameters are; each group remembers its peak lr as ``base_lr`` for the schedule."""
    every = list(leaves.values())
    opts = INNER_OPTIMIZERS[hp.inner_optimizer](split.select(leaves), every, hp)
    check_ownership(optimizer_groups(opts), every)
    for o in opts:
        for group in o.param_groups:
            group["base_lr"] = group["lr"]
    return opts


def inner_lr_multiplier(hp, i: int, k: int, inner_steps: int, total_steps: int) -> float:
    """The multiplier of inner step ``i`` of ``k`` in this outer step (``inner_steps`` before it in the run)."""
    if hp.inner_schedule == "constant":
        return 1.0
    if hp.inner_schedule == "cosine_restart":  # restarted every outer step, over its K inner steps
        return warmup_then_decay(i, k, final=hp.end_lr)
    total = max(1, total_steps * k)  # global_cosine: one warmup-cosine over every inner step of the run
    return warmup_then_decay(inner_steps, total, int(hp.global_warmup * total), final=hp.end_lr, start=0.1)


def clip_groups(groups: list[list[nn.Parameter]], max_norm: float) -> None:
    """Each group's gradients clipped to ``max_norm`` as one vector (the release: {embedding, head} and
    {every other parameter} for full GN, one group per stage for layerwise GN)."""
    if max_norm <= 0:
        return
    for group in groups:
        mine = [p for p in group if p.grad is not None]
        if mine:
            torch.nn.utils.clip_grad_norm_(mine, max_norm)
