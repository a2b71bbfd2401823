"""AdamW (Loshchilov & Hutter 2019) as the Gauss-Newton paper's release runs it: beta2 0.95, global
gradient clipping at 1.0, warmup then cosine or constant."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from optimizers.first_order.base import FirstOrder, FirstOrderHyper, adamw_kernel
from optimizers.hyper import NON_NEGATIVE, POSITIVE, UNIT, hyper
from optimizers.interface import MemoryModel
from optimizers.registry import register


@dataclass(frozen=True)
class AdamWHyper(FirstOrderHyper):
    lr: float = hyper(1e-2, POSITIVE)
    beta1: float = hyper(0.9, UNIT)
    beta2: float = hyper(0.95, UNIT)
    eps: float = hyper(1e-8, POSITIVE)
    weight_decay: float = hyper(0.0, NON_NEGATIVE)


@register
class AdamW(FirstOrder):
    name = "adamw"
    Hyper = AdamWHyper
    # The first key is the learning rate, the one key the grid protocol (--tuning grid) searches; coordinate tuning
    # searches them all. lr: the release's grid (0.003, 0.01, 0.03); beta2: the release's 0.95 and Marin's 0.98
    # (Wen et al. 2026) on either side, log-spaced in 1 - beta2; weight decay: Marin's AdamW grid reaches 0.1
    # (decoupled, times lr), 0 is the release's; warmup: a fraction of the budget, against the rise a fresh
    # optimizer state makes after the AdamW warm start.
    search_space = {"lr": [3e-3, 1e-2, 3e-2], "beta2": [0.9, 0.95, 0.98, 0.99], "weight_decay": [0.0, 0.01, 0.1],
                    "warmup": [0.0, 0.05, 0.1]}
    description = "AdamW, clip 1.0, beta2 0.95"
    # fitted to the peak of real steps at 45m and 150m: weights and the two moments through the step (the gradients
    # fill as the activations free)
    memory = MemoryModel(state_bytes_per_parameter=12.0)

    def build_optimizers(self, model):
        hp = self.hp
        params = [p for p in model.parameters() if p.requires_grad]
        return [
            torch.optim.AdamW(
                params, lr=hp.lr, betas=(hp.beta1, hp.beta2), eps=hp.eps, weight_decay=hp.weight_decay,
                **adamw_kernel(params),
            )
        ]
