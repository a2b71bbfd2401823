"""Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms") as an optbench backend.

The update of each parameter p with gradient g and momentum m:
    p <- p - lr * (sign(b1 * m + (1 - b1) * g) + wd * p)
    m <- b2 * m + (1 - b2) * g
The backend reuses optbench's first-order body (accumulation over the step's micro-batches, the
all-reduce under DDP, clipping, the learning-rate schedule); only the optimizer is new.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from optimizers.first_order import FirstOrder, FirstOrderHyper
from optimizers.hyper import NON_NEGATIVE, POSITIVE, UNIT, hyper


class LionOptimizer(torch.optim.Optimizer):
    def __init__(self, params, lr: float = 1e-4, betas=(0.9, 0.99), weight_decay: float = 0.0) -> None:
        super().__init__(params, {"lr": lr, "betas": betas, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["exp_avg"] = torch.zeros_like(p)
                m = state["exp_avg"]
                update = (beta1 * m + (1 - beta1) * p.grad).sign_()
                p.mul_(1 - group["lr"] * group["weight_decay"]).add_(update, alpha=-group["lr"])
                m.lerp_(p.grad, 1 - beta2)


@dataclass(frozen=True)
class LionHyper(FirstOrderHyper):
    # each setting with what values it may take: tuning, --set and --grid stay inside them
    lr: float = hyper(1e-3, POSITIVE)
    beta1: float = hyper(0.9, UNIT)
    beta2: float = hyper(0.99, UNIT)
    weight_decay: float = hyper(0.0, NON_NEGATIVE)


class Lion(FirstOrder):
    name = "lion"
    Hyper = LionHyper
    # Lion's sign update has unit size per coordinate: its lr sits 3-10x below AdamW's
    search_space = {"lr": [3e-4, 1e-3, 3e-3]}
    description = "Lion: the sign of an interpolated momentum (example plugin)"

    def build_optimizers(self, model):
        hp = self.hp
        params = [p for p in model.parameters() if p.requires_grad]
        return [LionOptimizer(params, lr=hp.lr, betas=(hp.beta1, hp.beta2), weight_decay=hp.weight_decay)]
