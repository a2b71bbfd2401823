"""SOAP: against a plain reimplementation, against AdamW when nothing rotates, the power-iteration
refresh, state_dict round trips and the backend's parameter split."""

from __future__ import annotations

import copy
import io
import math

import pytest
import torch

import optimizers.first_order.soap  # noqa: F401  (registers the backend)
from optimizers import make_hyper, registry
from optimizers.first_order.soap import SOAP, SOAPBackend
from optimizers.interface import Costs, StepContext
from tests.helpers import backend_for

DT = torch.float64


def _grads(shape, steps, seed, row_scale=None):
    gen = torch.Generator().manual_seed(seed)
    out = []
    for t in range(steps):
        g = torch.randn(shape, generator=gen, dtype=DT)
        if row_scale is not None:
            g = g * row_scale(t).unsqueeze(1)
        out.append(g)
    return out


def _run_soap(p0, grads, **kw):
    """SOAP's trajectory: the parameter after each step (gradients set by hand)."""
    p = torch.nn.Parameter(p0.clone())
    opt = SOAP([p], **kw)
    traj = []
    for g in grads:
        p.grad = g.clone()
        opt.step()
        traj.append(p.detach().clone())
    return traj, opt


# ------------------------------------------------------------------------ 1. plain reimplementation


def _eig_desc(a):
    vals, vecs = torch.linalg.eigh(a)
    return vecs[:, torch.argsort(vals, descending=True)]


def _reference_soap(p0, grads, lr, beta1, beta2, shampoo_beta, eps, wd, max_dim):
    """Adam in the eigenbasis of the accumulated Kronecker factors, basis recomputed exactly (eigh) after
    every update; the first gradient only initialises the factors and the basis."""
    p = p0.clone()
    m, n = p.shape
    rot_left, rot_right = m <= max_dim, n <= max_dim
    L = torch.zeros(m, m, dtype=DT)
    R = torch.zeros(n, n, dtype=DT)
    # First gradient: factors and basis only, no update.
    g = grads[0]
    L = shampoo_beta * L + (1 - shampoo_beta) * (g @ g.T)
    R = shampoo_beta * R + (1 - shampoo_beta) * (g.T @ g)
    QL = _eig_desc(L) if rot_left else torch.eye(m, dtype=DT)
    QR = _eig_desc(R) if rot_right else torch.eye(n, dtype=DT)
    mom = torch.zeros(m, n, dtype=DT)  # first moment, original coordinates
    v = torch.zeros(m, n, dtype=DT)  # second moment, rotated coordinates
    traj, nontrivial_perms = [p.clone()], 0
    for t, g in enumerate(grads[1:], start=1):
        g_rot = QL.T @ g @ QR
        mom = beta1 * mom + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g_rot**2
        u_rot = (QL.T @ mom @ QR) / (torch.sqrt(v) + eps)
        u = QL @ u_rot @ QR.T
        p = p - lr * math.sqrt(1 - beta2**t) / (1 - beta1**t) * u
        p = p - lr * wd * p
        L = shampoo_beta * L + (1 - shampoo_beta) * (g @ g.T)
        R = shampoo_beta * R + (1 - shampoo_beta) * (g.T @ g)
        # Refresh (frequency 1): v's rows/columns follow the old basis sorted by its Rayleigh quotients
        # against the new factor; the new basis is the factor's exact eigenvectors.
        if rot_left:
            perm = torch.argsort(torch.diag(QL.T @ L @ QL), descending=True)
            nontrivial_perms += int(not torch.equal(perm, torch.arange(m)))
            v = v[perm, :]
            QL = _eig_desc(L)
        if rot_right:
            perm = torch.argsort(torch.diag(QR.T @ R @ QR), descending=True)
            nontrivial_perms += int(not torch.equal(perm, torch.arange(n)))
            v = v[:, perm]
            QR = _eig_desc(R)
        traj.append(p.clone())
    return traj, nontrivial_perms


@pytest.mark.parametrize("max_dim", [10000, 6])  # 6: the 7-wide right side stays unrotated
def test_matches_plain_reimplementation_with_exact_eigh_refresh(max_dim):
    shape, steps = (5, 7), 8
    # Row scales that swap halfway through, with a short factor memory, so the eigenvalue order changes
    # and the exp_avg_sq permutation is exercised.
    big, small = torch.tensor([4.0, 2.0, 1.0, 0.5, 0.25], dtype=DT), torch.ones(5, dtype=DT)
    grads = _grads(shape, steps, seed=0, row_scale=lambda t: big if t < 4 else big.flip(0) + small)
    p0 = torch.randn(shape, generator=torch.Generator().manual_seed(1), dtype=DT)
    hp = dict(lr=0.05, beta1=0.9, beta2=0.95, shampoo_beta=0.3, eps=1e-8, wd=0.1)
    ref, nontrivial = _reference_soap(p0, grads, max_dim=max_dim, **hp)
    assert nontrivial > 0, "the test should exercise the second-moment permutation"
    got, opt = _run_soap(
        p0, grads, lr=hp["lr"], betas=(hp["beta1"], hp["beta2"]), shampoo_beta=hp["shampoo_beta"],
        eps=hp["eps"], weight_decay=hp["wd"], precondition_frequency=1, max_precond_dim=max_dim,
        refresh="eigh",
    )
    assert torch.equal(got[0], p0)  # the first step only initialises
    for a, b in zip(got, ref):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)
    assert ("Q_R" in opt.state[opt.param_groups[0]["params"][0]]) == (max_dim >= 7)
    # The rotation matters: plain Adam on the same gradients ends elsewhere.
    ident, _ = _reference_soap(p0, grads, max_dim=0, **hp)
    assert (ident[-1] - ref[-1]).abs().max() > 1e-3


# ------------------------------------------------------------------------- 2. identity basis = AdamW


@pytest.mark.parametrize(("eps", "wd"), [(0.0, 0.0), (0.0, 0.05), (1e-8, 0.0)])
def test_identity_basis_is_adamw(eps, wd):
    shape, steps, lr, betas = (4, 5), 7, 0.03, (0.9, 0.95)
    grads = _grads(shape, steps, seed=2)
    p0 = torch.randn(shape, generator=torch.Generator().manual_seed(3), dtype=DT)
    got, opt = _run_soap(p0, grads, lr=lr, betas=betas, eps=eps, weight_decay=wd, max_precond_dim=3)
    state = opt.state[opt.param_groups[0]["params"][0]]
    assert not {"L", "R", "Q_L", "Q_R"} & set(state), "nothing should be preconditioned"
    assert torch.equal(got[0], p0)  # the first gradient is consumed by the initialisation
    # AdamW on gradients 2..n. SOAP decays after the update (p <- (p - lr*u)(1 - lr*wd)) where
    # torch's AdamW decays before it, so the decay is applied by hand after an undecayed AdamW step.
    q = torch.nn.Parameter(p0.clone())
    adamw = torch.optim.AdamW([q], lr=lr, betas=betas, eps=eps, weight_decay=0.0)
    # SOAP adds eps to the uncorrected sqrt(v) (torch to the bias-corrected one), so with eps > 0 they
    # agree only up to eps's effect, largest where a coordinate's gradients are small.
    atol = 1e-12 if eps == 0 else 1e-6
    for g, expected in zip(grads[1:], got[1:]):
        q.grad = g.clone()
        adamw.step()
        with torch.no_grad():
            q.mul_(1 - lr * wd)
        torch.testing.assert_close(expected, q.detach(), rtol=0, atol=atol)


# ---------------------------------------------------------------------- 3. power-iteration refresh


def _offdiag_ratio(q, factor):
    rot = q.T @ factor @ q
    diag = torch.diag(torch.diag(rot))
    return float(torch.linalg.norm(rot - diag) / torch.linalg.norm(diag))


def _random_orthogonal(n, gen):
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=DT))
    return q


def test_power_qr_refresh_tracks_the_eigenbasis():
    m, n, steps = 8, 6, 300
    gen = torch.Generator().manual_seed(4)
    # G = A Z B with Z standard normal: E[G G^T] ∝ A A^T, E[G^T G] ∝ B^T B, well-separated spectra.
    A = _random_orthogonal(m, gen) @ torch.diag(2.0 ** -torch.arange(m, dtype=DT))
    B = torch.diag(1.6 ** -torch.arange(n, dtype=DT)) @ _random_orthogonal(n, gen)
    grads = [A @ torch.randn(m, n, generator=gen, dtype=DT) @ B for _ in range(steps)]
    p0 = torch.zeros(m, n, dtype=DT)
    ratios = {}
    for name, freq in (("refreshed", 5), ("frozen", 10**9)):
        _, opt = _run_soap(p0, grads, lr=1e-3, betas=(0.9, 0.95), shampoo_beta=0.98, precondition_frequency=freq)
        state = opt.state[opt.param_groups[0]["params"][0]]
        for side in ("L", "R"):
            q = state[f"Q_{side}"]
            torch.testing.assert_close(q.T @ q, torch.eye(q.shape[0], dtype=DT), rtol=0, atol=1e-10)
            ratios[name, side] = _offdiag_ratio(q, state[side])
    for side in ("L", "R"):
        assert ratios["refreshed", side] < 0.1, ratios  # ~0.02 here; frozen ~0.6
        assert ratios["refreshed", side] < ratios["frozen", side] / 4, ratios


# ------------------------------------------------------------------------------ 4. state_dict


def test_state_dict_round_trip_is_bit_identical():
    gen = torch.Generator().manual_seed(5)
    shapes = [(6, 5), (3, 12)]  # with max_precond_dim 8 the second one's right side stays unrotated
    kw = dict(lr=0.02, betas=(0.9, 0.95), weight_decay=0.01, precondition_frequency=3, max_precond_dim=8)
    params = [torch.nn.Parameter(torch.randn(s, generator=gen, dtype=DT)) for s in shapes]
    opt = SOAP(params, **kw)

    def feed(ps, grads):
        for p, g in zip(ps, grads):
            p.grad = g.clone()

    for _ in range(7):  # refreshes at updates 3 and 6
        feed(params, [torch.randn(s, generator=gen, dtype=DT) for s in shapes])
        opt.step()

    buf = io.BytesIO()
    torch.save(opt.state_dict(), buf)
    buf.seek(0)
    clones = [torch.nn.Parameter(p.detach().clone()) for p in params]
    fresh = SOAP(clones, lr=1.0, max_precond_dim=8)  # hyperparameters come back from the state dict
    fresh.load_state_dict(torch.load(buf, weights_only=True))
    assert fresh.param_groups[0]["lr"] == kw["lr"]
    for p, c in zip(params, clones):
        a, b = opt.state[p], fresh.state[c]
        assert set(a) == set(b)
        for key in a:
            assert torch.equal(a[key], b[key]) and a[key].dtype == b[key].dtype, key
    for _ in range(4):  # includes the refresh at update 9
        grads = [torch.randn(s, generator=gen, dtype=DT) for s in shapes]
        feed(params, grads)
        feed(clones, grads)
        opt.step()
        fresh.step()
        for p, c in zip(params, clones):
            assert torch.equal(p, c)
    # deepcopy of a state_dict loads just as well
    again = SOAP([torch.nn.Parameter(p.detach().clone()) for p in params], max_precond_dim=8)
    again.load_state_dict(copy.deepcopy(opt.state_dict()))


def test_rejects_non_matrix_parameters():
    with pytest.raises(ValueError):
        SOAP([torch.nn.Parameter(torch.zeros(4))])
    with pytest.raises(ValueError):
        SOAP([torch.nn.Parameter(torch.zeros(2, 3, 4))])
    with pytest.raises(ValueError):
        SOAP([torch.nn.Parameter(torch.zeros(2, 3))], refresh="qr")


# ------------------------------------------------------------------------------------ 5. backend


def test_backend_builds_on_tiny_model_and_steps():
    from models.transformer import Transformer, lm_loss, model_config

    torch.manual_seed(0)
    model = Transformer(model_config("tiny"))
    assert registry()["soap"] is SOAPBackend
    hp = make_hyper(SOAPBackend, {"lr": 1e-2, "adam_lr_ratio": 0.5})
    backend = backend_for(SOAPBackend, model, hp, 10)
    soap_opt, adamw = backend.optimizers
    assert isinstance(soap_opt, SOAP) and isinstance(adamw, torch.optim.AdamW)
    soap_params = [p for g in soap_opt.param_groups for p in g["params"]]
    adam_params = [p for g in adamw.param_groups for p in g["params"]]
    ids = [id(p) for p in soap_params + adam_params]
    trainable = [id(p) for p in model.parameters() if p.requires_grad]
    assert len(ids) == len(set(ids)) and set(ids) == set(trainable)
    assert all(p.ndim == 2 for p in soap_params) and all(p.ndim != 2 for p in adam_params)
    assert {id(model.embed.weight), id(model.head.weight)} <= {id(p) for p in soap_params}
    assert soap_opt.param_groups[0]["base_lr"] == 1e-2 and adamw.param_groups[0]["base_lr"] == 5e-3

    gen = torch.Generator().manual_seed(6)
    batch = torch.randint(0, model.cfg.vocab_size, (2, 17), generator=gen)
    before = {id(p): p.detach().clone() for p in model.parameters()}
    for step in range(3):
        ctx = StepContext(
            model=model, microbatches=[batch], draw=lambda k: [batch] * k, costs=Costs(), loss_fn=lm_loss,
        )
        loss = backend.step(ctx)
        assert math.isfinite(loss)
        if step == 0:  # SOAP's first step only initialises; AdamW's moves the 1-D parameters
            assert all(torch.equal(p, before[id(p)]) for p in soap_params)
            assert any(not torch.equal(p, before[id(p)]) for p in adam_params)
    assert all(not torch.equal(p, before[id(p)]) for p in soap_params)
    state = backend.state_dict()
    backend.load_state_dict(state)
