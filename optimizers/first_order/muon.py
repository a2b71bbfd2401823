"""Muon (Jordan et al. 2024) as the Gauss-Newton paper's release builds it (its ``muon`` optimizer:
``optax.contrib.muon`` beside an AdamW chain): Newton-Schulz-orthogonalised Nesterov momentum
(``torch.optim.Muon``) on the hidden matrices of the blocks, AdamW on the embedding and the head, Adam
with Nesterov momentum on the 1-D parameters, one learning rate for all three, and gradients clipped per
chain ({embedding, head} and {everything else}). ``muon_chain`` builds the three optimizers for this
backend and for Gauss-Newton's inner solver."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from optimizers.first_order.adam_nesterov import AdamNesterov
from optimizers.first_order.base import FirstOrder, FirstOrderHyper, adamw_kernel
from optimizers.hyper import ANY, COUNT, NON_NEGATIVE, POSITIVE, UNIT, hyper
from optimizers.interface import MemoryModel
from optimizers.partition import muon_split
from optimizers.registry import register


@dataclass(frozen=True)
class MuonHyper(FirstOrderHyper):
    lr: float = hyper(0.01, POSITIVE)  # one learning rate for the Muon part and the Adam parts (the release's chain)
    momentum: float = hyper(0.95, UNIT)
    nesterov: bool = True
    ns_steps: int = hyper(5, COUNT)
    # torch.optim.Muon's adjust_lr_fn; "original" = optax's sqrt(max(1, out/in))
    adjust_lr: str = hyper("original", ("original", "match_rms_adamw"))
    weight_decay: float = hyper(0.0, NON_NEGATIVE)  # Muon part (the release passes none)
    adam_lr: float = hyper(-1.0, ANY)  # Adam parts; <= 0 means lr * adam_lr_ratio
    adam_lr_ratio: float = hyper(1.0, POSITIVE)  # the Adam parts' lr relative to lr, where adam_lr <= 0
    adam_beta1: float = hyper(0.9, UNIT)
    adam_beta2: float = hyper(0.95, UNIT)
    adam_eps: float = hyper(1e-8, POSITIVE)
    adam_weight_decay: float = hyper(1e-4, NON_NEGATIVE)  # embedding, head and 1-D parameters


def muon_chain(hidden: list[nn.Parameter], embed_head: list[nn.Parameter], vectors: list[nn.Parameter],
               hp: MuonHyper) -> list[torch.optim.Optimizer]:
    """Muon on ``hidden`` (2-D matrices only: torch's Muon takes nothing else), AdamW on ``embed_head``,
    Adam with Nesterov momentum on ``vectors``."""
    adam_lr = hp.adam_lr if hp.adam_lr > 0 else hp.lr * hp.adam_lr_ratio
    adam = dict(lr=adam_lr, betas=(hp.adam_beta1, hp.adam_beta2), eps=hp.adam_eps, weight_decay=hp.adam_weight_decay)
    chain = [torch.optim.Muon(hidden, lr=hp.lr, momentum=hp.momentum, nesterov=hp.nesterov, ns_steps=hp.ns_steps,
                              weight_decay=hp.weight_decay, adjust_lr_fn=hp.adjust_lr),
             torch.optim.AdamW(embed_head, **adam, **adamw_kernel(embed_head))]
    return [*chain, AdamNesterov(vectors, **adam)] if vectors else chain


@register
class Muon(FirstOrder):
    name = "muon"
    Hyper = MuonHyper
    # lr: from the release's 0.01 up (first key: the grid protocol's); momentum: Muon's 0.95 (Jordan et al. 2024,
    # the release) with 0.9 and 0.98 beside it, log-spaced in 1 - momentum; the Adam parts' lr as a ratio of lr
    # (the release shares one lr: 1), a factor of 3 either way; weight decay of the Muon part: the release's 0
    # and Marin's range up to 0.1.
    search_space = {"lr": [0.01, 0.02, 0.05], "momentum": [0.9, 0.95, 0.98], "adam_lr_ratio": [0.3, 1.0, 3.0],
                    "weight_decay": [0.0, 0.01, 0.1]}
    description = "Muon on hidden matrices, AdamW on embedding and head, Nesterov Adam on 1-D (one lr, clip per chain)"
    memory = MemoryModel(state_bytes_per_parameter=10.5)  # AdamW's fitted 12, one buffer fewer on the hidden matrices

    def build_optimizers(self, model):
        return muon_chain(*muon_split(self.layout).select(dict(model.named_parameters())), self.hp)

    def clip_groups(self) -> list[list[nn.Parameter]]:
        hidden, embed_head, vectors = muon_split(self.layout).select(dict(self.model.named_parameters()))
        return [embed_head, hidden + vectors]
