"""The cross-entropy side of the Gauss-Newton product, in logit space: its gradient g0 and Hessian
products H0 v, and the linear head z = h Wᵀ differentiated by hand over chunks of tokens so that no more
than ``CHUNK_ELEMENTS`` logits are alive at once (one softmax per chunk, the rest in place)."""

from __future__ import annotations

import torch

CHUNK_ELEMENTS = 1 << 24  # logits alive at once in the head: 16M entries (64 MB in fp32)


def ce_grad(z_NxV: torch.Tensor, y_N: torch.Tensor) -> torch.Tensor:
    """∂L/∂z of the mean cross-entropy: (softmax(z) - onehot(y)) / N."""
    g = torch.softmax(z_NxV, dim=-1)
    g[torch.arange(y_N.numel(), device=y_N.device), y_N] -= 1
    return g / y_N.numel()


def ce_hvp(p_NxV: torch.Tensor, v_NxV: torch.Tensor) -> torch.Tensor:
    """H0 v with H0 = (diag(p) - p pᵀ) / N per token, p the softmax at z0."""
    return (p_NxV * v_NxV - p_NxV * (p_NxV * v_NxV).sum(-1, keepdim=True)) / p_NxV.shape[0]


def head_terms(h, dh, W, dW, y, objective: str, chunk_elements: int, want_gh: bool):
    """The head z = h Wᵀ over chunks of tokens: (J_hᵀ-side gradient gh, gradient of W where it moves,
    mean loss at z0, mean inner objective)."""
    n_tok = y.numel()
    gh = torch.empty_like(h) if want_gh else None
    gW = torch.zeros_like(W) if dW is not None else None
    base = model = torch.zeros((), dtype=torch.float64, device=h.device)
    rows = max(1, chunk_elements // W.shape[0])
    with torch.no_grad():
        for a in range(0, n_tok, rows):
            b = min(n_tok, a + rows)
            z = h[a:b] @ W.T
            jd = torch.zeros_like(z) if dh is None else dh[a:b] @ W.T
            if dW is not None:
                jd += h[a:b] @ dW.T
            u, chunk_base, chunk_model = _ce_terms(z, jd, y[a:b], objective)
            base, model = base + chunk_base, model + chunk_model
            u /= n_tok
            if gW is not None:
                gW += u.T @ h[a:b]
            if gh is not None:
                gh[a:b] = u @ W
    return gh, gW, float(base) / n_tok, float(model) / n_tok


def _ce_terms(z: torch.Tensor, jd: torch.Tensor, y: torch.Tensor, objective: str):
    """For rows of logits z0 and J0Δ: (u × N, Σ cross-entropy at z0, Σ inner objective), with u the
    vector pulled back (g0 + H0 J0Δ, or ∇L(z0 + J0Δ)); one softmax, the rest in place."""
    if z.dtype in (torch.float16, torch.bfloat16):  # softmax in at least fp32, as the model loss
        z, jd = z.float(), jd.float()
    idx = torch.arange(y.numel(), device=y.device)
    logp = torch.log_softmax(z, dim=-1)
    base = -logp[idx, y].double().sum()
    if objective == "prox_linear":
        logq = torch.log_softmax(z.add_(jd), dim=-1)
        model = -logq[idx, y].double().sum()
        u = logq.exp_()
        u[idx, y] -= 1
        return u, base, model
    p = logp.exp_()
    s = (p * jd).sum(-1, keepdim=True)  # pᵀ J0Δ per token
    quad = (p * jd * jd).sum(-1, keepdim=True) - s * s  # (J0Δ)ᵀ (diag p - p pᵀ) J0Δ
    jd_y = jd[idx, y]
    model = base + (s.squeeze(-1) - jd_y).double().sum() + 0.5 * quad.double().sum()
    u = p.mul_(jd.add_(1).sub_(s))  # p ⊙ (1 + J0Δ - pᵀJ0Δ) = p + H0 J0Δ (× N)
    u[idx, y] -= 1
    return u, base, model


def chunked_cross_entropy(h: torch.Tensor, W: torch.Tensor, y: torch.Tensor,
                          chunk_elements: int = CHUNK_ELEMENTS) -> torch.Tensor:
    """Mean cross-entropy of the logits h Wᵀ against ``y``, never holding more than ``chunk_elements`` of
    them (a loss only: no graph is kept)."""
    h, y = h.flatten(0, -2), y.flatten()
    rows = max(1, chunk_elements // W.shape[0])
    total = torch.zeros((), dtype=torch.float64, device=h.device)
    with torch.no_grad():
        for a in range(0, y.numel(), rows):
            z = h[a:a + rows] @ W.T
            z = z.float() if z.dtype in (torch.float16, torch.bfloat16) else z
            total += torch.nn.functional.cross_entropy(z, y[a:a + rows], reduction="sum").double()
    return total / y.numel()
