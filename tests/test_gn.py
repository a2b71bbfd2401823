"""Gauss-Newton curvature and solver checks against dense float64 computations, on real text."""

import pytest
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from optimizers import get_backend, make_hyper
from optimizers.base import split_batch
from optimizers.curvature import StageMap, linearized_gradient
from tests.helpers import Drawer, context, real_batches, tiny_model

V, T = 32, 8
SMALL = dict(vocab_size=V, d_model=8, n_layers=2, n_heads=2, d_ff=16, max_seq_len=T)


@pytest.fixture(scope="module")
def setup(smoke_data):
    _, data = smoke_data
    model = tiny_model(dtype=torch.float64, **SMALL)
    batch = real_batches(data, 1, 2, T, V)[0]
    x, y = split_batch(batch)
    params = {n: p.detach().clone() for n, p in model.named_parameters()}
    names = list(params)
    sizes = [params[n].numel() for n in names]

    def unflat(v):
        return {n: t.view(params[n].shape) for n, t in zip(names, v.split(sizes))}

    def logits(v):
        return torch.func.functional_call(model, unflat(v), (x,)).flatten(0, 1)

    flat = torch.cat([params[n].flatten() for n in names])
    with sdpa_kernel(SDPBackend.MATH):
        J = torch.autograd.functional.jacobian(logits, flat).reshape(-1, flat.numel())  # (N*V, P)
    z = logits(flat).detach()
    N = z.shape[0]
    p = torch.softmax(z, -1)
    H = torch.block_diag(*[(torch.diag(p[i]) - torch.outer(p[i], p[i])) / N for i in range(N)])
    G = J.T @ H @ J
    grad = J.T @ ((p - F.one_hot(y.flatten(), V)).flatten() / N)
    return dict(model=model, data=data, x=x, y=y, params=params, names=names, flat=flat, unflat=unflat,
                G=G, grad=grad, batch=batch, smap=StageMap.of(model, T))


def _cat(d, names):
    return torch.cat([d[n].flatten() for n in names])


def _solve(s, delta, stages, objective="gn"):
    acts = s["smap"].activations(s["params"], s["x"])
    return linearized_gradient(s["smap"], s["params"], delta, stages, acts, s["y"], objective)


def test_gn_vector_product_matches_dense_jacobians(setup):
    s = setup
    torch.manual_seed(1)
    v = s["unflat"](torch.randn_like(s["flat"]))
    zero = {n: torch.zeros_like(t) for n, t in s["params"].items()}
    every = list(range(len(s["smap"])))
    gv = _cat(_solve(s, v, every).grads, s["names"]) - _cat(_solve(s, zero, every).grads, s["names"])
    ref = s["G"] @ _cat(v, s["names"])
    assert ((gv - ref).norm() / ref.norm()).item() <= 1e-10


@pytest.mark.parametrize("objective", ["gn", "prox_linear"])
def test_inner_gradient_at_zero_is_the_true_gradient(setup, objective):
    s = setup
    zero = {n: torch.zeros_like(t) for n, t in s["params"].items()}
    res = _solve(s, zero, list(range(len(s["smap"]))), objective)
    g = _cat(res.grads, s["names"])
    assert ((g - s["grad"]).norm() / s["grad"].norm()).item() <= 1e-10
    true_loss = F.cross_entropy(s["model"](s["x"]).flatten(0, 1), s["y"].flatten()).item()
    assert res.model_loss == pytest.approx(true_loss, rel=1e-12)
    assert res.base_loss == pytest.approx(true_loss, rel=1e-12)


def test_layerwise_products_are_the_diagonal_blocks_and_stay_in_their_block(setup):
    s = setup
    smap, names = s["smap"], s["names"]
    offsets, o = {}, 0
    for n in names:
        offsets[n] = (o, o + s["params"][n].numel())
        o += s["params"][n].numel()
    torch.manual_seed(2)
    v = s["unflat"](torch.randn_like(s["flat"]))
    zero = {n: torch.zeros_like(t) for n, t in s["params"].items()}
    for stage in range(len(smap)):
        mine = list(smap.names[stage].values())
        idx = torch.cat([torch.arange(*offsets[n]) for n in mine])
        res, res0 = _solve(s, v, [stage]), _solve(s, zero, [stage])
        assert set(res.grads) == set(mine)  # a tangent in one block never moves another
        got = _cat(res.grads, mine) - _cat(res0.grads, mine)
        ref = s["G"][idx][:, idx] @ _cat(v, names)[idx]
        assert ((got - ref).norm() / ref.norm()).item() <= 1e-10, stage
        # other blocks' tangents do not enter block `stage`'s product
        other = {n: (v[n] if n in mine else 7 * torch.ones_like(v[n])) for n in names}
        torch.testing.assert_close(_cat(_solve(s, other, [stage]).grads, mine), _cat(res.grads, mine))


def test_many_inner_steps_reach_the_damped_gauss_newton_solution(setup):
    s = setup
    lam = 0.05
    eig_max = torch.linalg.eigvalsh(s["G"]).max().item()
    model = tiny_model(dtype=torch.float64, **SMALL)
    cls = get_backend("gn")
    hp = make_hyper(cls, dict(inner_optimizer="sgd", lr=1.0 / (eig_max + lam), inner_schedule="constant",
                              inner_clip=0.0, damping=lam, ls_range=1))
    backend = cls(model, hp, 1)
    backend.step(context(model, [s["batch"]] * 3000, None))
    delta = torch.cat([p.detach().flatten() for p in model.parameters()]) - s["flat"]
    ref = -torch.linalg.solve(s["G"] + lam * torch.eye(len(s["flat"]), dtype=torch.float64), s["grad"])
    assert ((delta - ref).norm() / ref.norm()).item() < 1e-6


@pytest.mark.parametrize("reject", [False, True])
def test_line_search_keeps_the_best_candidate(setup, reject):
    s = setup
    model = tiny_model(dtype=torch.float64, **SMALL)
    cls = get_backend("gn")
    backend = cls(model, make_hyper(cls, dict(ls_range=6, ls_reject=reject, ls_batches=2)), 5)
    anchor = {n: p.detach().clone() for n, p in model.named_parameters()}
    torch.manual_seed(3)
    direction = {n: 0.5 * torch.randn_like(t) for n, t in anchor.items()}
    drawer = Drawer(s["data"], 2, T, V)
    ctx = context(model, [s["batch"]], drawer)
    chosen = backend.line_search(ctx, anchor, direction)
    losses = backend.last_ls_losses
    cands = backend.candidates()
    assert chosen in cands and (0.0 in cands) == reject
    assert losses[cands.index(chosen)] == min(losses)
    if reject:  # never worse than not moving, on the line-search batches
        assert losses[cands.index(chosen)] <= losses[cands.index(0.0)]
    assert ctx.costs.forward == len(cands) * 2


@pytest.mark.parametrize("name", ["gn", "gn-prox-linear", "layerwise-gn"])
def test_outer_step_counts_its_passes_and_moves_along_the_line_search(name, setup):
    s = setup
    model = tiny_model(dtype=torch.float64, **SMALL)
    cls = get_backend(name)
    backend = cls(model, make_hyper(cls, dict(ls_batches=1)), 5)
    batches = real_batches(s["data"], 3, 2, T, V)
    ctx = context(model, batches, Drawer(s["data"], 2, T, V))
    loss = backend.step(ctx)
    assert loss > 0 and backend.outer_steps == 1 and backend.inner_steps == 3
    assert ctx.costs.backward > 0 and ctx.costs.jvp > 0
    assert ctx.costs.forward >= backend.hp.ls_range  # line search: one forward per candidate
    if name == "layerwise-gn":
        assert ctx.costs.jvp > 3  # one partial JVP per stage per inner step, summing to more than one
    else:
        assert ctx.costs.jvp == 3
