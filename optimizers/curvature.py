"""Gauss-Newton products through ``torch.func``-style forward-mode AD, never forming a curvature matrix.

Notation (DESIGN §2): θ0 the anchor, z0 = f(θ0; b) the logits, J0 their Jacobian, Δ = θ - θ0,
L the mean token cross-entropy, g0 = ∂L/∂z and H0 = ∂²L/∂z² at z0 (per token diag(p) - p pᵀ, divided by
the number of tokens).

One inner step needs J0ᵀ u for u = g0 + H0 J0 Δ (the quadratic model) or u = ∇L(z0 + J0 Δ)
(prox-linear): a JVP (``torch.func.jvp``) for J0 Δ and a VJP (``torch.func.vjp``) for the pull-back.
(One forward carrying dual numbers through an autograd-recorded primal computes both too, but measured
1.5x slower on CPU: autograd then also records every tangent operation.)

The network is a chain of stages (embedding, blocks, head: ``Transformer.stages``). A tangent that lives
in stage s only is zero before s, so a solve for stage s starts from the stage's input activation at θ0
and runs the rest of the network: layerwise Gauss-Newton pays for the suffix, not the whole model.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call
from torch.nn.attention import SDPBackend, sdpa_kernel


@dataclass
class StageMap:
    """The model's stages and, for each, the model-level names of its parameters."""

    stages: list[nn.Module]
    names: list[dict[str, str]]  # per stage: stage-local name -> model name
    flops: list[float]  # forward FLOPs per token of each stage

    @classmethod
    def of(cls, model: nn.Module, seq_len: int) -> StageMap:
        by_id = {id(p): n for n, p in model.named_parameters()}
        stages = model.stages()
        names = [{local: by_id[id(p)] for local, p in st.named_parameters()} for st in stages]
        owned = [n for m in names for n in m.values()]
        if sorted(owned) != sorted(by_id.values()):
            raise AssertionError("stages must own every parameter exactly once")
        return cls(stages, names, model.stage_flops(seq_len))

    def __len__(self) -> int:
        return len(self.stages)

    def suffix_fraction(self, start: int) -> float:
        """Share of a full forward pass spent in stages ``start..``."""
        return sum(self.flops[start:]) / sum(self.flops)

    def stage_params(self, s: int, params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {local: params[name] for local, name in self.names[s].items()}

    @torch.no_grad()
    def activations(self, params: dict[str, torch.Tensor], x: torch.Tensor) -> list[torch.Tensor]:
        """Input of every stage at ``params`` (acts[0] is the token ids)."""
        acts = [x]
        with sdpa_kernel(SDPBackend.MATH):
            for s in range(len(self.stages) - 1):
                acts.append(functional_call(self.stages[s], self.stage_params(s, params), (acts[-1],)))
        return acts

    def run(self, start: int, x: torch.Tensor, stage_params: list[dict[str, torch.Tensor]]) -> torch.Tensor:
        for s in range(start, len(self.stages)):
            x = functional_call(self.stages[s], stage_params[s], (x,))
        return x


def ce_grad(z_NxV: torch.Tensor, y_N: torch.Tensor) -> torch.Tensor:
    """∂L/∂z of the mean cross-entropy: (softmax(z) - onehot(y)) / N."""
    g = torch.softmax(z_NxV, dim=-1)
    g[torch.arange(y_N.numel(), device=y_N.device), y_N] -= 1
    return g / y_N.numel()


def ce_hvp(p_NxV: torch.Tensor, v_NxV: torch.Tensor) -> torch.Tensor:
    """H0 v with H0 = (diag(p) - p pᵀ) / N per token, p the softmax at z0."""
    return (p_NxV * v_NxV - p_NxV * (p_NxV * v_NxV).sum(-1, keepdim=True)) / p_NxV.shape[0]


@dataclass
class LinearizedResult:
    grads: dict[str, torch.Tensor]  # model name -> gradient of the inner objective (tangent stages only)
    base_loss: float  # L(z0): the true loss at the anchor on this micro-batch
    model_loss: float  # the inner objective at Δ (quadratic model or prox-linear loss)


def linearized_gradient(
    smap: StageMap,
    anchor: dict[str, torch.Tensor],
    delta: dict[str, torch.Tensor],
    tangent_stages: list[int],
    acts: list[torch.Tensor],
    targets: torch.Tensor,
    objective: str = "gn",
) -> LinearizedResult:
    """Gradient with respect to Δ (restricted to ``tangent_stages``) of the inner objective on one
    micro-batch, linearised at ``anchor``:

    - ``gn``: q(Δ) = L(z0) + g0ᵀ J0Δ + ½ (J0Δ)ᵀ H0 (J0Δ), gradient J0ᵀ (g0 + H0 J0 Δ);
    - ``prox_linear``: L(z0 + J0 Δ), gradient J0ᵀ ∇L(z0 + J0 Δ).

    Only the parameters of ``tangent_stages`` move (the others stay at the anchor): with one stage this
    is a diagonal block J_lᵀ H0 J_l of the Gauss-Newton matrix; with every stage, full Gauss-Newton.
    """
    start = min(tangent_stages)
    moving = [n for s in tangent_stages for n in smap.names[s].values()]

    def logits(moved: dict[str, torch.Tensor]) -> torch.Tensor:
        params = {**anchor, **moved}
        return smap.run(start, acts[start], [smap.stage_params(s, params) for s in range(len(smap))])

    primal = {n: anchor[n] for n in moving}
    with sdpa_kernel(SDPBackend.MATH):
        z0, vjp_fn = torch.func.vjp(logits, primal)  # z0 and the pull-back J0ᵀ(.)
        _, jd = torch.func.jvp(logits, (primal,), ({n: delta[n] for n in moving},))  # J0 Δ
    z0_shape = z0.shape
    z0 = z0.flatten(0, -2)  # (N, V)
    jd = jd.flatten(0, -2).to(z0.dtype)
    y = targets.flatten()
    with torch.no_grad():
        zd = z0.detach()
        base = F.cross_entropy(zd, y)
        if objective == "gn":
            p = torch.softmax(zd, dim=-1)
            g0 = ce_grad(zd, y)
            hjd = ce_hvp(p, jd)
            u = g0 + hjd
            model_loss = base + (g0 * jd).sum() + 0.5 * (jd * hjd).sum()
        elif objective == "prox_linear":
            u = ce_grad(zd + jd, y)
            model_loss = F.cross_entropy(zd + jd, y)
        else:
            raise ValueError(f"unknown objective {objective!r}; valid: gn, prox_linear")
    (grads,) = vjp_fn(u.view(z0_shape))
    return LinearizedResult(grads, float(base), float(model_loss))
