"""Muon (Jordan et al. 2024): Newton-Schulz-orthogonalised Nesterov momentum on the hidden matrices of
the transformer blocks (``torch.optim.Muon``), AdamW on the embedding, the head and every non-matrix
parameter, as in the Gauss-Newton paper's release (momentum 0.95). ``muon_adamw`` builds the pair for
this backend and for Gauss-Newton's inner solver."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from optimizers.first_order import FirstOrder, FirstOrderHyper, adamw_kernel
from optimizers.interface import MemoryModel
from optimizers.partition import partition_parameters
from optimizers.registry import register


@dataclass(frozen=True)
class MuonHyper(FirstOrderHyper):
    lr: float = 0.02  # Muon's learning rate (hidden matrices)
    momentum: float = 0.95
    nesterov: bool = True
    ns_steps: int = 5
    adjust_lr: str = "original"  # torch.optim.Muon's adjust_lr_fn: "original" or "match_rms_adamw"
    weight_decay: float = 0.0
    adam_lr: float = 1e-2  # AdamW side: embedding, head, norms
    adam_beta1: float = 0.9
    adam_beta2: float = 0.95
    adam_eps: float = 1e-8
    adam_weight_decay: float = 0.0


def muon_adamw(hidden: list[nn.Parameter], rest: list[nn.Parameter], hp: MuonHyper) -> list[torch.optim.Optimizer]:
    """Muon on ``hidden`` (2-D matrices only: torch's Muon takes nothing else), AdamW on ``rest``."""
    return [
        torch.optim.Muon(
            hidden, lr=hp.lr, momentum=hp.momentum, nesterov=hp.nesterov, ns_steps=hp.ns_steps,
            weight_decay=hp.weight_decay, adjust_lr_fn=hp.adjust_lr,
        ),
        torch.optim.AdamW(
            rest, lr=hp.adam_lr, betas=(hp.adam_beta1, hp.adam_beta2), eps=hp.adam_eps,
            weight_decay=hp.adam_weight_decay, **adamw_kernel(rest),
        ),
    ]


@register
class Muon(FirstOrder):
    name = "muon"
    Hyper = MuonHyper
    search_space = {"lr": [0.02, 0.05, 0.1]}  # the best of {0.01, 0.02, 0.05} sat at its top on `cpu`
    description = "Muon on hidden matrices (momentum 0.95, 5 Newton-Schulz steps), AdamW on the rest"
    memory = MemoryModel(state_bytes_per_parameter=14.0)  # one momentum buffer on the hidden matrices

    def build_optimizers(self, model):
        return muon_adamw(*partition_parameters(model), self.hp)
