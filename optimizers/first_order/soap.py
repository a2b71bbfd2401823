"""SOAP (Vyas et al. 2024, "SOAP: Improving and Stabilizing Shampoo using Adam"): Adam run in the
eigenbasis of Shampoo's Kronecker factors.

For a matrix parameter W (m x n) with gradient G, SOAP keeps Shampoo's two Kronecker factors

    L = EMA(G G^T)  (m x m),    R = EMA(G^T G)  (n x n),

and their eigenbases Q_L, Q_R. Adam's second moment lives in the rotated coordinates
G' = Q_L^T G Q_R, where it is (approximately) diagonal, so the element-wise Adam update is taken there
and rotated back. The bases are refreshed only every ``precondition_frequency`` steps, by a single step
of power iteration followed by QR (cheaper than an eigendecomposition, and it tracks slowly drifting
factors well), so between refreshes a step costs four extra matrix products per side.

The backend runs SOAP on every 2-D parameter (the embedding and the head too: their vocabulary side is
larger than ``max_precond_dim`` at paper scale and stays unrotated) and AdamW on the rest (norm weights
and biases).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from optimizers.first_order.base import FirstOrder, FirstOrderHyper, adamw_kernel
from optimizers.hyper import COUNT, NON_NEGATIVE, POSITIVE, UNIT, Range, hyper
from optimizers.partition import optimizer_groups
from optimizers.registry import register

_REFRESH = ("power_qr", "eigh")


def _linalg_dtype(dtype: torch.dtype) -> torch.dtype:
    """Decompositions run in at least float32 (eigh and QR have no half-precision kernels)."""
    return torch.promote_types(dtype, torch.float32)


def _eigh_descending(factor: torch.Tensor) -> torch.Tensor:
    """Eigenvectors of a symmetric PSD matrix, as columns sorted by descending eigenvalue."""
    work = factor.to(_linalg_dtype(factor.dtype))
    try:
        _, vecs = torch.linalg.eigh(work)
    except torch.linalg.LinAlgError:
        # An ill-conditioned float32 factor can make the solver fail to converge; float64 does.
        _, vecs = torch.linalg.eigh(work.double())
    # eigh returns ascending eigenvalues; flipping the columns gives the descending order.
    return vecs.flip(-1).to(factor.dtype)


class SOAP(torch.optim.Optimizer):
    """SOAP for 2-D parameters.

    Args:
        lr: learning rate.
        betas: (beta1, beta2), Adam's first- and second-moment EMA coefficients.
        shampoo_beta: EMA coefficient of the Kronecker factors; negative means "use beta2".
        eps: added to sqrt(v) in the rotated space.
        weight_decay: decoupled (AdamW-style) decay, applied after the update as p -= lr * wd * p.
        precondition_frequency: refresh the eigenbases every this many updates.
        max_precond_dim: a side longer than this gets no factor and stays unrotated (identity basis).
        correct_bias: Adam's bias corrections (folded into the step size, as in the paper's code).
        refresh: "power_qr" (one power-iteration step then QR, the paper's method) or "eigh" (an exact
            eigendecomposition at every refresh; slower, useful for testing).

    State per parameter (all tensors, so state_dict round-trips exactly):
        step: number of Adam updates taken (the initialisation call is not counted).
        exp_avg: Adam's first moment, in the ORIGINAL coordinates (m x n).
        exp_avg_sq: Adam's second moment, in the ROTATED coordinates (m x n).
        L, Q_L / R, Q_R: the left / right factor and its basis, present only for a side that is
            preconditioned (its length is at most max_precond_dim).
    """

    def __init__(
        self,
        params,
        lr: float = 3e-3,
        betas: tuple[float, float] = (0.95, 0.95),
        shampoo_beta: float = -1.0,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        precondition_frequency: int = 10,
        max_precond_dim: int = 10000,
        correct_bias: bool = True,
        refresh: str = "power_qr",
    ) -> None:
        if lr < 0:
            raise ValueError(f"invalid learning rate {lr}")
        if not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"invalid betas {betas}")
        if shampoo_beta >= 1.0:
            raise ValueError(f"invalid shampoo_beta {shampoo_beta}")
        if eps < 0 or weight_decay < 0:
            raise ValueError(f"invalid eps {eps} or weight_decay {weight_decay}")
        if int(precondition_frequency) < 1 or int(max_precond_dim) < 0:
            raise ValueError(f"invalid precondition_frequency {precondition_frequency} or max_precond_dim {max_precond_dim}")
        if refresh not in _REFRESH:
            raise ValueError(f"unknown refresh {refresh!r}; valid: {', '.join(_REFRESH)}")
        defaults = dict(
            lr=lr, betas=tuple(betas), shampoo_beta=shampoo_beta, eps=eps, weight_decay=weight_decay,
            precondition_frequency=int(precondition_frequency), max_precond_dim=int(max_precond_dim),
            correct_bias=correct_bias, refresh=refresh,
        )
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                if p.ndim != 2:
                    raise ValueError(f"SOAP takes 2-D parameters only, got shape {tuple(p.shape)}")

    def add_param_group(self, param_group: dict) -> None:
        super().add_param_group(param_group)
        for p in self.param_groups[-1]["params"]:
            if p.ndim != 2:
                raise ValueError(f"SOAP takes 2-D parameters only, got shape {tuple(p.shape)}")

    # ------------------------------------------------------------------------------- rotations

    @staticmethod
    def _project(x: torch.Tensor, state: dict) -> torch.Tensor:
        """Into the eigenbasis: Q_L^T x Q_R (a missing side is the identity)."""
        if "Q_L" in state:
            x = state["Q_L"].T @ x
        if "Q_R" in state:
            x = x @ state["Q_R"]
        return x

    @staticmethod
    def _project_back(x: torch.Tensor, state: dict) -> torch.Tensor:
        """Out of the eigenbasis: Q_L x Q_R^T."""
        if "Q_L" in state:
            x = state["Q_L"] @ x
        if "Q_R" in state:
            x = x @ state["Q_R"].T
        return x

    @staticmethod
    def _update_factors(grad: torch.Tensor, state: dict, shampoo_beta: float) -> None:
        """L <- b L + (1 - b) G G^T and R <- b R + (1 - b) G^T G (torch.lerp with weight 1 - b)."""
        if "L" in state:
            state["L"].lerp_(grad @ grad.T, 1.0 - shampoo_beta)
        if "R" in state:
            state["R"].lerp_(grad.T @ grad, 1.0 - shampoo_beta)

    @staticmethod
    def _refresh_bases(state: dict, method: str) -> None:
        """Move the bases toward the current factors' eigenvectors and carry exp_avg_sq along.

        For each preconditioned side (axis 0 for L, axis 1 for R) with factor P and old basis Q:
          1. Estimate P's eigenvalues in the old basis, diag(Q^T P Q), and sort them descending.
          2. Permute Q's columns by that order, and the matching axis of exp_avg_sq with them, so each
             coordinate's second-moment estimate follows its eigenvector.
          3. New basis: "power_qr" takes one power-iteration step from the sorted old basis and
             re-orthonormalises it, Q <- QR(P Q).Q, which keeps the column order (each column stays
             near its predecessor); "eigh" takes P's exact eigenvectors, also sorted descending.
        As in the paper's code, exp_avg_sq is otherwise kept as it is: the (small) rotation between the
        old and the new basis is not applied to it. exp_avg needs nothing: it lives in the original
        coordinates and is projected into whatever basis is current when it is used.
        """
        v = state["exp_avg_sq"]
        for axis, (fkey, qkey) in enumerate((("L", "Q_L"), ("R", "Q_R"))):
            if fkey not in state:
                continue
            factor, basis = state[fkey], state[qkey]
            work_dtype = _linalg_dtype(factor.dtype)
            p_w, q_w = factor.to(work_dtype), basis.to(work_dtype)
            estimated = torch.diagonal(q_w.T @ p_w @ q_w)
            order = torch.argsort(estimated, descending=True)
            v = v.index_select(axis, order)
            if method == "eigh":
                new_basis = _eigh_descending(factor)
            else:
                new_basis, _ = torch.linalg.qr(p_w @ q_w[:, order])
                new_basis = new_basis.to(basis.dtype)
            basis.copy_(new_basis)
        state["exp_avg_sq"].copy_(v)

    # ------------------------------------------------------------------------------------ step

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("SOAP does not support sparse gradients")
                if not self.state[p]:
                    self._init_state(p, group)
                else:
                    self._update(p, group)
        return loss

    def _init_state(self, p: torch.Tensor, group: dict) -> None:
        """First call: initialise only. The factors start at zero and take the first EMA step from this
        gradient (so L = (1 - b) G G^T: the scale does not matter to the eigenvectors), the bases are their
        exact eigenvectors (torch.linalg.eigh, sorted by descending eigenvalue), and the parameter is NOT
        updated on this call, as in the paper's reference algorithm: there is no basis yet to take an Adam
        step in."""
        state = self.state[p]
        state["step"] = torch.zeros((), dtype=torch.float32)
        state["exp_avg"] = torch.zeros_like(p)
        state["exp_avg_sq"] = torch.zeros_like(p)
        m, n = p.shape
        if m <= group["max_precond_dim"]:
            state["L"] = torch.zeros((m, m), dtype=p.dtype, device=p.device)
        if n <= group["max_precond_dim"]:
            state["R"] = torch.zeros((n, n), dtype=p.dtype, device=p.device)
        self._update_factors(p.grad, state, self._shampoo_beta(group))
        if "L" in state:
            state["Q_L"] = _eigh_descending(state["L"])
        if "R" in state:
            state["Q_R"] = _eigh_descending(state["R"])

    @staticmethod
    def _shampoo_beta(group: dict) -> float:
        return group["shampoo_beta"] if group["shampoo_beta"] >= 0 else group["betas"][1]

    def _update(self, p: torch.Tensor, group: dict) -> None:
        grad, state = p.grad, self.state[p]
        beta1, beta2 = group["betas"]
        state["step"] += 1
        step = int(state["step"].item())
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        # 1. The gradient in the current eigenbasis, G' = Q_L^T G Q_R.
        grad_rot = self._project(grad, state)
        # 2. Adam's moments: the first in the original coordinates (so a basis change needs no
        #    bookkeeping for it), the second in the rotated ones, where it is near-diagonal.
        exp_avg.lerp_(grad, 1.0 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad_rot, grad_rot, value=1.0 - beta2)
        # 3. The Adam direction in the rotated space, m' / (sqrt(v) + eps) with m' = Q_L^T m Q_R.
        direction_rot = self._project(exp_avg, state) / exp_avg_sq.sqrt().add_(group["eps"])
        # 4. Bias corrections folded into the step size: lr * sqrt(1 - beta2^t) / (1 - beta1^t).
        step_size = group["lr"]
        if group["correct_bias"]:
            step_size *= math.sqrt(1.0 - beta2**step) / (1.0 - beta1**step)
        # 5. Rotate back, U = Q_L U' Q_R^T, and step.
        p.add_(self._project_back(direction_rot, state), alpha=-step_size)
        # 6. Decoupled weight decay, after the update (the paper's code's order).
        if group["weight_decay"] > 0:
            p.add_(p, alpha=-group["lr"] * group["weight_decay"])
        # 7. The factors take this step's gradient.
        self._update_factors(grad, state, self._shampoo_beta(group))
        # 8. Every precondition_frequency updates, refresh the bases (see _refresh_bases).
        if step % group["precondition_frequency"] == 0:
            self._refresh_bases(state, group["refresh"])


@dataclass(frozen=True)
class SOAPHyper(FirstOrderHyper):
    lr: float = hyper(1e-2, POSITIVE)
    beta1: float = hyper(0.9, UNIT)
    beta2: float = hyper(0.95, UNIT)
    shampoo_beta: float = hyper(-1.0, Range(high=1.0, high_open=True))  # negative: use beta2
    eps: float = hyper(1e-8, POSITIVE)
    weight_decay: float = hyper(1e-4, NON_NEGATIVE)
    precondition_frequency: int = hyper(10, COUNT)
    max_precond_dim: int = hyper(10000, COUNT)
    adam_lr_ratio: float = hyper(1.0, POSITIVE)  # lr of the AdamW side (1-D parameters) relative to lr


@register
class SOAPBackend(FirstOrder):
    name = "soap"
    Hyper = SOAPHyper
    # lr: the release's grid (first key: the grid protocol's); beta2: the release's 0.95 with the SOAP paper's
    # 0.99 (Vyas et al. 2024), log-spaced in 1 - beta2; weight decay: the release's 1e-4 up to Marin's 0.1, log;
    # preconditioner refresh every 10 steps (the release, the paper) against 1 and 3.
    search_space = {"lr": [3e-3, 1e-2, 3e-2], "beta2": [0.95, 0.98, 0.99], "weight_decay": [1e-4, 1e-3, 1e-2, 1e-1],
                    "precondition_frequency": [1, 3, 10]}
    description = "SOAP: Adam in Shampoo's eigenbasis (preconditioner every 10 steps); AdamW on 1-D; clip per chain"

    def build_optimizers(self, model):
        hp = self.hp
        params = [p for p in model.parameters() if p.requires_grad]
        matrices = [p for p in params if p.ndim == 2]
        rest = [p for p in params if p.ndim != 2]
        optimizers: list[torch.optim.Optimizer] = []
        if matrices:
            optimizers.append(
                SOAP(
                    matrices, lr=hp.lr, betas=(hp.beta1, hp.beta2), shampoo_beta=hp.shampoo_beta, eps=hp.eps,
                    weight_decay=hp.weight_decay, precondition_frequency=hp.precondition_frequency,
                    max_precond_dim=hp.max_precond_dim,
                )
            )
        if rest:
            optimizers.append(
                torch.optim.AdamW(
                    rest, lr=hp.lr * hp.adam_lr_ratio, betas=(hp.beta1, hp.beta2), eps=hp.eps,
                    weight_decay=hp.weight_decay, **adamw_kernel(rest),
                )
            )
        return optimizers

    def clip_groups(self):
        return optimizer_groups(self.optimizers)  # matrices and 1-D parameters apart, as the release
