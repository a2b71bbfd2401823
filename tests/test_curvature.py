"""Gauss-Newton products (optimizers/gauss_newton/curvature.py) against dense float64 matrices, on real text."""

import pytest
import torch
import torch.nn.functional as F

from optimizers.gauss_newton.curvature import TRUNK_PRODUCTS, ce_grad, ce_hvp, linearized_gradient
from tests.helpers import cat, dense_gauss_newton


@pytest.fixture(scope="module")
def setup(token_data):
    return dense_gauss_newton(token_data[1])


def _solve(s, delta, stages, objective="gn", product="double_backward"):
    acts = s["smap"].activations(s["params"], s["x"])
    return linearized_gradient(s["smap"], s["params"], delta, stages, acts, s["y"], objective, product=product)


@pytest.mark.parametrize("product", TRUNK_PRODUCTS)
def test_gn_vector_product_matches_dense_jacobians(setup, product):
    s = setup
    torch.manual_seed(1)
    v = s["unflat"](torch.randn_like(s["flat"]))
    zero = {n: torch.zeros_like(t) for n, t in s["params"].items()}
    every = list(range(len(s["smap"])))
    gv = (cat(_solve(s, v, every, product=product).grads, s["names"])
          - cat(_solve(s, zero, every, product=product).grads, s["names"]))
    ref = s["G"] @ cat(v, s["names"])
    assert ((gv - ref).norm() / ref.norm()).item() <= 1e-10


@pytest.mark.parametrize("objective", ["gn", "prox_linear"])
def test_inner_gradient_at_zero_is_the_true_gradient(setup, objective):
    s = setup
    zero = {n: torch.zeros_like(t) for n, t in s["params"].items()}
    res = _solve(s, zero, list(range(len(s["smap"]))), objective)
    g = cat(res.grads, s["names"])
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
        got = cat(res.grads, mine) - cat(res0.grads, mine)
        ref = s["G"][idx][:, idx] @ cat(v, names)[idx]
        assert ((got - ref).norm() / ref.norm()).item() <= 1e-10, stage
        # other blocks' tangents do not enter block `stage`'s product
        other = {n: (v[n] if n in mine else 7 * torch.ones_like(v[n])) for n in names}
        torch.testing.assert_close(cat(_solve(s, other, [stage]).grads, mine), cat(res.grads, mine))


def test_cross_entropy_derivatives_match_autograd():
    torch.manual_seed(4)
    z = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 5, (6,))
    v = torch.randn(6, 5, dtype=torch.float64)
    (g,) = torch.autograd.grad(F.cross_entropy(z, y), z, create_graph=True)
    (hv,) = torch.autograd.grad(g, z, v)
    torch.testing.assert_close(ce_grad(z.detach(), y), g.detach())
    torch.testing.assert_close(ce_hvp(torch.softmax(z.detach(), -1), v), hv)


@pytest.mark.parametrize("objective", ["gn", "prox_linear"])
def test_the_head_in_chunks_equals_autodiff_through_the_whole_network(setup, objective):
    """The hand-differentiated head over chunks of a few tokens gives what VJP and JVP through every stage
    give on the whole logit tensor, for full GN and for each layerwise block."""
    from optimizers.gauss_newton.curvature import _through_autodiff

    s = setup
    torch.manual_seed(3)
    v = s["unflat"](1e-2 * torch.randn_like(s["flat"]))
    acts = s["smap"].activations(s["params"], s["x"])
    vocab = s["params"][next(iter(s["smap"].names[-1].values()))].shape[0]
    for stages in [list(range(len(s["smap"]))), *([i] for i in range(len(s["smap"])))]:
        ref = _through_autodiff(s["smap"], s["params"], v, stages, acts, s["y"], objective)
        got = linearized_gradient(s["smap"], s["params"], v, stages, acts, s["y"], objective,
                                  chunk_elements=7 * vocab)  # 7 tokens at a time
        assert set(got.grads) == set(ref.grads)
        for n in ref.grads:
            torch.testing.assert_close(got.grads[n], ref.grads[n], rtol=1e-10, atol=1e-13)
        assert got.base_loss == pytest.approx(ref.base_loss, rel=1e-12)
        assert got.model_loss == pytest.approx(ref.model_loss, rel=1e-12)


@pytest.mark.parametrize("product", ["jvp", "forward_ad"])
@pytest.mark.parametrize("objective", ["gn", "prox_linear"])
def test_every_trunk_product_gives_the_same_gauss_newton_product(setup, product, objective):
    s = setup
    torch.manual_seed(5)
    v = s["unflat"](1e-2 * torch.randn_like(s["flat"]))
    acts = s["smap"].activations(s["params"], s["x"])
    for stages in [list(range(len(s["smap"]))), [1], [2, len(s["smap"]) - 1]]:
        a, b = (linearized_gradient(s["smap"], s["params"], v, stages, acts, s["y"], objective, product=p)
                for p in ("double_backward", product))
        assert set(a.grads) == set(b.grads)
        for n in a.grads:
            torch.testing.assert_close(a.grads[n], b.grads[n], rtol=1e-10, atol=1e-13)
        assert b.base_loss == pytest.approx(a.base_loss, rel=1e-12)
        assert b.model_loss == pytest.approx(a.model_loss, rel=1e-12)
    with pytest.raises(ValueError, match="unknown GN product 'x'"):
        linearized_gradient(s["smap"], s["params"], v, [0], acts, s["y"], product="x")


@pytest.mark.parametrize("objective", ["gn", "prox_linear"])
def test_blocks_sharing_one_forward_equal_each_block_alone(setup, objective):
    from optimizers.gauss_newton.curvature import blockwise_gradients, shares_blocks

    s = setup
    assert shares_blocks(s["smap"])
    torch.manual_seed(6)
    v = s["unflat"](1e-2 * torch.randn_like(s["flat"]))
    acts = s["smap"].activations(s["params"], s["x"])
    shared = blockwise_gradients(s["smap"], s["params"], v, s["x"], s["y"], objective, chunk_elements=5 * 512)
    assert len(shared) == len(s["smap"])
    for stage, got in enumerate(shared):
        alone = linearized_gradient(s["smap"], s["params"], v, [stage], acts, s["y"], objective)
        assert set(got.grads) == set(alone.grads)
        for n in alone.grads:
            torch.testing.assert_close(got.grads[n], alone.grads[n], rtol=1e-10, atol=1e-13)
        assert got.model_loss == pytest.approx(alone.model_loss, rel=1e-12)
        assert got.base_loss == pytest.approx(alone.base_loss, rel=1e-12)
