"""Gauss-Newton products through automatic differentiation, never forming a curvature matrix.

Notation (DESIGN §2): θ0 the anchor, z0 = f(θ0; b) the logits, J0 their Jacobian, Δ = θ - θ0,
L the mean token cross-entropy, g0 = ∂L/∂z and H0 = ∂²L/∂z² at z0 (per token diag(p) - p pᵀ, divided by
the number of tokens).

One inner step needs J0ᵀ u for u = g0 + H0 J0 Δ (the quadratic model) or u = ∇L(z0 + J0 Δ)
(prox-linear). The head z = h Wᵀ is differentiated by hand over chunks of tokens (no more than one chunk of
logits alive, one softmax per chunk); through the stages before it, J0 Δ comes from differentiating the
kept graph's pull-back (a second backward, the default) or from a JVP, and J0ᵀ u from a backward. (One
forward carrying dual numbers through an autograd-recorded primal computes both too, but measured 1.5x
slower on CPU: autograd then also records every tangent operation.)

The network is a chain of stages (embedding, blocks, head: ``optimizers.layout.StageMap``). A tangent that lives
in stage s only is zero before s, so a solve for stage s starts from the stage's input activation at θ0
and runs the rest of the network: layerwise Gauss-Newton pays for the suffix, not the whole model.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.autograd.forward_ad as fwAD
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call
from torch.nn.attention import SDPBackend, sdpa_kernel

from optimizers.gauss_newton.logit_space import (
    CHUNK_ELEMENTS,
    ce_grad,
    ce_hvp,
    chunked_cross_entropy,
    head_terms,
)
from optimizers.layout import StageMap


@dataclass
class LinearizedResult:
    grads: dict[str, torch.Tensor]  # model name -> gradient of the inner objective (tangent stages only)
    base_loss: float  # L(z0): the true loss at the anchor on this micro-batch
    model_loss: float  # the inner objective at Δ (quadratic model or prox-linear loss)


def accumulate(total: LinearizedResult | None, part: LinearizedResult, weight: float) -> LinearizedResult:
    """A running sum of one group's result on a micro-batch over its pieces: every term is a mean over the piece's
    tokens, so the micro-batch's is their sum weighted by each piece's share of the sequences (all of one length).
    Added piece by piece into ``total``'s own tensors (changed in place), so that no more than the sum and one
    piece's gradient are alive; a whole micro-batch (``weight`` 1) is itself, bit for bit."""
    if total is None:
        if weight == 1.0:
            return part
        return LinearizedResult({n: weight * g for n, g in part.grads.items()}, weight * part.base_loss,
                                weight * part.model_loss)
    for n, g in part.grads.items():
        total.grads[n].add_(g, alpha=weight)
    return LinearizedResult(total.grads, total.base_loss + weight * part.base_loss,
                            total.model_loss + weight * part.model_loss)


def linearized_gradient(
    smap: StageMap,
    anchor: dict[str, torch.Tensor],
    delta: dict[str, torch.Tensor],
    tangent_stages: list[int],
    acts: list[torch.Tensor],
    targets: torch.Tensor,
    objective: str = "gn",
    chunk_elements: int = CHUNK_ELEMENTS,
    product: str = "double_backward",
) -> LinearizedResult:
    """Gradient with respect to Δ (restricted to ``tangent_stages``) of the inner objective on one
    micro-batch, linearised at ``anchor``:

    - ``gn``: q(Δ) = L(z0) + g0ᵀ J0Δ + ½ (J0Δ)ᵀ H0 (J0Δ), gradient J0ᵀ (g0 + H0 J0 Δ);
    - ``prox_linear``: L(z0 + J0 Δ), gradient J0ᵀ ∇L(z0 + J0 Δ).

    Only the parameters of ``tangent_stages`` move (the others stay at the anchor): with one stage this
    is a diagonal block J_lᵀ H0 J_l of the Gauss-Newton matrix; with every stage, full Gauss-Newton.

    The head (a bias-free linear map z = h Wᵀ) is linear in both h and W, so it is differentiated by hand
    over chunks of tokens: z0, J0Δ = dh Wᵀ + h ΔWᵀ, the cross-entropy terms and the pull-back to h and W
    never hold more than ``chunk_elements`` logits at once. Forward- and reverse-mode AD run only through
    the stages before it, whose output (N × d) is small; ``product`` says how (see ``_trunk``).
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; valid: {', '.join(OBJECTIVES)}")
    head = len(smap) - 1
    layer = smap.stages[head]
    if not isinstance(layer, nn.Linear) or layer.bias is not None:
        return _through_autodiff(smap, anchor, delta, tangent_stages, acts, targets, objective)
    (w_name,) = smap.names[head].values()
    trunk = [s for s in tangent_stages if s < head]
    h0, dh, pull_back = _trunk(smap, anchor, delta, trunk, acts, product) if trunk else (acts[head], None, None)
    h = h0.flatten(0, -2)
    dh = None if dh is None else dh.flatten(0, -2).to(h.dtype)
    dW = delta[w_name] if head in tangent_stages else None
    gh, gW, base, model = head_terms(h, dh, anchor[w_name], dW, targets.flatten(), objective, chunk_elements,
                                want_gh=bool(trunk))
    grads = dict(pull_back(gh.view(h0.shape))) if trunk else {}
    if gW is not None:
        grads[w_name] = gW
    return LinearizedResult(grads, base, model)


TRUNK_PRODUCTS = ("double_backward", "jvp", "forward_ad")
OBJECTIVES = ("gn", "prox_linear")  # the quadratic model, or the true loss of the linearised model


def _trunk(smap: StageMap, anchor, delta, trunk: list[int], acts, product: str = "double_backward"):
    """The head's input h0 at θ0, its tangent dh = J_h Δ, and the pull-back J_hᵀ(.), through the stages
    ``min(trunk)`` .. head - 1.

    ``double_backward`` (the default, the fastest on CPU at the ``cpu`` shape): one forward that keeps its graph,
    then dh = ∂/∂v ⟨J_hᵀ v, Δ⟩ by differentiating the pull-back, a second backward instead of a second forward;
    attention on the math kernel (the CPU flash kernel has no double backward), whose (T × T) scores the
    recorded backward keeps for every layer. ``forward_ad``: dh from a forward carrying dual numbers
    (``torch.autograd.forward_ad``) under no_grad, so nothing of it is kept, and h0 with its graph from a plain
    forward (any attention kernel): the least memory, and the fastest at ``17m``. ``jvp``: ``torch.func.vjp``
    for h0 and the pull-back, ``torch.func.jvp`` for dh."""
    if product not in TRUNK_PRODUCTS:
        raise ValueError(f"unknown GN product {product!r}; valid: {', '.join(TRUNK_PRODUCTS)}")
    start, head = min(trunk), len(smap) - 1
    moving = [n for s in trunk for n in smap.names[s].values()]

    def hidden(moved: dict[str, torch.Tensor]) -> torch.Tensor:
        params = {**anchor, **moved}
        x = acts[start]
        for s in range(start, head):
            x = functional_call(smap.stages[s], smap.stage_params(s, params), (x,))
        return x

    primal = {n: anchor[n] for n in moving}
    tangent = {n: delta[n] for n in moving}
    if product == "jvp":
        with sdpa_kernel(SDPBackend.MATH):
            h0, pull_back = torch.func.vjp(hidden, primal)
            _, dh = torch.func.jvp(hidden, (primal,), (tangent,))
        return h0, dh, lambda gh: pull_back(gh)[0]
    if product == "forward_ad":
        with torch.no_grad(), fwAD.dual_level(), sdpa_kernel(SDPBackend.MATH):
            dh = fwAD.unpack_dual(hidden({n: fwAD.make_dual(primal[n], tangent[n]) for n in moving})).tangent
        with torch.enable_grad():
            leaves = {n: t.detach().requires_grad_(True) for n, t in primal.items()}
            h0 = hidden(leaves)
    else:
        with sdpa_kernel(SDPBackend.MATH), torch.enable_grad():
            leaves = {n: t.detach().requires_grad_(True) for n, t in primal.items()}
            h0 = hidden(leaves)
            v = torch.zeros_like(h0, requires_grad=True)
            pulled = torch.autograd.grad(h0, list(leaves.values()), v, create_graph=True)
            (dh,) = torch.autograd.grad(pulled, v, [tangent[n] for n in leaves], retain_graph=True)
        del pulled, v  # the recorded backward, before the head's terms are computed

    def pull_back_leaves(gh: torch.Tensor) -> dict[str, torch.Tensor]:
        return dict(zip(leaves, torch.autograd.grad(h0, list(leaves.values()), gh)))

    return h0.detach(), dh.detach(), pull_back_leaves


def _through_autodiff(smap, anchor, delta, tangent_stages, acts, targets, objective) -> LinearizedResult:
    """The same product for a network whose last stage is not a bias-free linear head: VJP and JVP
    through every stage from the first that moves, on the whole logit tensor."""
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
            g0 = ce_grad(zd, y)
            hjd = ce_hvp(torch.softmax(zd, dim=-1), jd)
            u = g0 + hjd
            model_loss = base + (g0 * jd).sum() + 0.5 * (jd * hjd).sum()
        else:
            u = ce_grad(zd + jd, y)
            model_loss = F.cross_entropy(zd + jd, y)
    (grads,) = vjp_fn(u.view(z0_shape))
    return LinearizedResult(grads, float(base), float(model_loss))


def blockwise_gradients(smap: StageMap, anchor, delta, x: torch.Tensor, targets: torch.Tensor,
                        objective: str = "gn", chunk_elements: int = CHUNK_ELEMENTS) -> list[LinearizedResult]:
    """``linearized_gradient`` for every stage alone (layerwise Gauss-Newton's diagonal blocks), sharing
    one forward through the trunk and one pull-back graph: block s's J_sΔ_s = ∂/∂v ⟨J_sᵀ v, Δ_s⟩ differentiates
    the shared pull-back restricted to stage s, and J_sᵀ u_s is one backward from the head's input to stage
    s. Needs a bias-free linear head (``shares_blocks``). One result per stage, in stage order."""
    head = len(smap) - 1
    (w_name,) = smap.names[head].values()
    names = [list(smap.names[s].values()) for s in range(head)]
    with sdpa_kernel(SDPBackend.MATH), torch.enable_grad():
        leaves = {n: anchor[n].detach().requires_grad_(True) for group in names for n in group}
        params = {**anchor, **leaves}
        h0 = x
        for s in range(head):
            h0 = functional_call(smap.stages[s], smap.stage_params(s, params), (h0,))
        v = torch.zeros_like(h0, requires_grad=True)
        pulled = dict(zip(leaves, torch.autograd.grad(h0, list(leaves.values()), v, create_graph=True,
                                                      allow_unused=True)))
        h, y = h0.detach().flatten(0, -2), targets.flatten()
        results = []
        for s in range(head):
            used = [n for n in names[s] if pulled[n] is not None]
            (dh,) = torch.autograd.grad([pulled[n] for n in used], v, [delta[n] for n in used], retain_graph=True)
            gh, _, base, model = head_terms(h, dh.flatten(0, -2).to(h.dtype), anchor[w_name], None, y, objective,
                                       chunk_elements, want_gh=True)
            grads = torch.autograd.grad(h0, [leaves[n] for n in names[s]], gh.view(h0.shape), retain_graph=True,
                                        allow_unused=True)
            results.append(LinearizedResult({n: torch.zeros_like(anchor[n]) if g is None else g
                                             for n, g in zip(names[s], grads)}, base, model))
    _, gW, base, model = head_terms(h, None, anchor[w_name], delta[w_name], y, objective, chunk_elements, want_gh=False)
    results.append(LinearizedResult({w_name: gW}, base, model))
    return results


def group_gradients(smap: StageMap, anchor, delta, groups: list[list[int]], x: torch.Tensor, targets: torch.Tensor,
                    objective: str, product: str, shared: bool) -> list[LinearizedResult]:
    """The inner objective's gradient on the sequences ``x`` for every stage group: the layerwise blocks from one
    shared forward where ``shared`` (``blockwise_gradients``), else each group from its first stage's input."""
    if shared:
        return blockwise_gradients(smap, anchor, delta, x, targets, objective)
    acts = smap.activations(anchor, x) if len(groups) > 1 else [x]
    return [linearized_gradient(smap, anchor, delta, group, acts, targets, objective, product=product)
            for group in groups]


def shares_blocks(smap: StageMap) -> bool:
    """Whether ``blockwise_gradients`` applies: the last stage is a bias-free linear head."""
    head = smap.stages[-1]
    return isinstance(head, nn.Linear) and head.bias is None


def chunked_loss(smap: StageMap, chunk_elements: int = CHUNK_ELEMENTS):
    """The line search's loss at ``params`` on (x, y) through the stages, the head's logits in chunks
    (``logit_space.chunked_cross_entropy``); for a bias-free linear head only (``shares_blocks``)."""
    (w_name,) = smap.names[-1].values()

    @torch.no_grad()
    def loss(params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = x
        for s in range(len(smap) - 1):
            h = functional_call(smap.stages[s], smap.stage_params(s, params), (h,))
        return chunked_cross_entropy(h, params[w_name], y, chunk_elements)

    return loss
