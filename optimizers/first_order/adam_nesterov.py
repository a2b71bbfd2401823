"""Adam with Nesterov momentum, as optax's ``scale_by_adam(nesterov=True)`` followed by decoupled weight
decay and the learning rate (optax's ``adamw(..., nesterov=True)``): what the release's Muon optimizer
(``optax.contrib.muon``) runs on every parameter that is not a matrix.

With gradient g, step t (from 1) and moments m, v:

    m <- b1 m + (1 - b1) g,   v <- b2 v + (1 - b2) g²
    m̂ = b1 m / (1 - b1^(t+1)) + (1 - b1) g / (1 - b1^t),   v̂ = v / (1 - b2^t)
    p <- p - lr (m̂ / (sqrt(v̂) + eps) + wd p)

``torch.optim.NAdam`` is another method (Dozat's momentum-decay schedule), hence this file.
"""

from __future__ import annotations

import torch


class AdamNesterov(torch.optim.Optimizer):
    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        if lr < 0 or eps < 0 or weight_decay < 0 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"invalid settings lr={lr} betas={betas} eps={eps} weight_decay={weight_decay}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = torch.zeros((), dtype=torch.float32)
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                t = int(state["step"].item())
                m, v, g = state["exp_avg"], state["exp_avg_sq"], p.grad
                m.lerp_(g, 1 - b1)
                v.mul_(b2).addcmul_(g, g, value=1 - b2)
                m_hat = m * (b1 / (1 - b1 ** (t + 1))) + g * ((1 - b1) / (1 - b1**t))
                update = m_hat / (v / (1 - b2**t)).sqrt().add_(group["eps"])
                if group["weight_decay"] > 0:
                    update.add_(p, alpha=group["weight_decay"])
                p.add_(update, alpha=-group["lr"])
        return loss
