"""The Gauss-Newton backends (optimizers/gauss_newton/backends.py): the inner solver reaches the damped Gauss-Newton solution,
and an outer step counts its passes and lands where its line search says, on real text."""

import math

import pytest
import torch

from optimizers import get_backend, make_hyper
from optimizers.first_order.adam_nesterov import AdamNesterov
from optimizers.gauss_newton.linesearch import candidates
from optimizers.partition import muon_split
from tests.helpers import (
    SMALL,
    Drawer,
    T,
    V,
    backend_for,
    context,
    dense_gauss_newton,
    real_batches,
    tiny_model,
)


@pytest.fixture(scope="module")
def setup(token_data):
    return dense_gauss_newton(token_data[1])


def test_many_inner_steps_reach_the_damped_gauss_newton_solution(setup):
    s = setup
    lam = 0.5
    eig_max = torch.linalg.eigvalsh(s["G"]).max().item()
    # Gradient descent at step 1/(L + λ) contracts the error by at most 1 - λ/(L + λ) a step (G is rank-deficient:
    # its smallest eigenvalue is 0): enough steps for 1e-9, checked at 1e-6
    steps = math.ceil(math.log(1e-9) / math.log(1 - lam / (eig_max + lam)))
    model = tiny_model(dtype=torch.float64, **SMALL)
    cls = get_backend("gn")
    hp = make_hyper(cls, dict(inner_optimizer="sgd", lr=1.0 / (eig_max + lam), inner_schedule="constant",
                              inner_clip=0.0, damping=lam, ls_range=1))
    backend = backend_for(cls, model, hp, 1)
    backend.step(context(model, [s["batch"]] * steps, None))
    delta = torch.cat([p.detach().flatten() for p in model.parameters()]) - s["flat"]
    ref = -torch.linalg.solve(s["G"] + lam * torch.eye(len(s["flat"]), dtype=torch.float64), s["grad"])
    assert ((delta - ref).norm() / ref.norm()).item() < 1e-6


@pytest.mark.parametrize("name", ["gn", "gn-prox-linear", "layerwise-gn"])
def test_outer_step_lands_where_its_line_search_says(name, setup):
    s = setup
    model = tiny_model(dtype=torch.float64, **SMALL)
    cls = get_backend(name)
    backend = backend_for(cls, model, make_hyper(cls, dict(ls_batches=1, ls_range=6)), 5)
    anchor = {n: p.detach().clone() for n, p in model.named_parameters()}
    batches = real_batches(s["data"], 3, 2, T, V)
    ctx = context(model, batches, Drawer(s["data"], 2, T, V))
    with torch.no_grad():
        expected_loss = sum(ctx.batch_loss(b).item() for b in batches) / 3  # at θ0, before the step
    ctx.costs.forward -= 3
    loss = backend.step(ctx)
    assert loss == pytest.approx(expected_loss, rel=1e-12)
    assert backend.outer_steps == 1 and backend.inner_steps == 3
    scale = backend.last_scale
    assert backend.last_ls_losses[candidates(6).index(scale)] == min(backend.last_ls_losses)
    moved = False
    for n, p in model.named_parameters():  # θ = θ0 + s (θ_K - θ0), θ_K the inner iterate
        torch.testing.assert_close(p.detach(), anchor[n] + scale * (backend.inner[n].detach() - anchor[n]))
        moved |= not torch.equal(p.detach(), anchor[n])
    assert moved
    if name == "layerwise-gn":
        assert ctx.costs.jvp > 3  # one partial JVP per stage per inner step, summing to more than one
    else:
        assert ctx.costs.jvp == 3


def test_unknown_inner_settings_are_refused():
    cls = get_backend("gn")
    for bad in ({"inner_optimizer": "lbfgs"}, {"inner_schedule": "linear"}):
        with pytest.raises(ValueError, match="is not one of"):
            make_hyper(cls, bad)


@pytest.mark.parametrize("name", ["gn", "layerwise-gn"])
def test_the_inner_solver_is_the_release_muon_chain_clipped_in_the_release_groups(name):
    model = tiny_model()
    cls = get_backend(name)
    backend = backend_for(cls, model, make_hyper(cls, {}), 5)
    split = muon_split(backend.layout)
    muon, adamw, nesterov = backend.optimizers
    assert isinstance(muon, torch.optim.Muon) and isinstance(adamw, torch.optim.AdamW)
    assert isinstance(nesterov, AdamNesterov)
    for opt, names in zip(backend.optimizers, split):
        assert [p for g in opt.param_groups for p in g["params"]] == [backend.inner[n] for n in names]
        assert all(g["betas"] == (0.9, 0.999) and g["weight_decay"] == 0.001 for g in opt.param_groups
                   if "betas" in g)
    groups = [{n for n, leaf in backend.inner.items() if any(leaf is p for p in group)} for group in backend.clip_groups]
    if name == "gn":
        assert groups == [set(split.embed_head), set(split.hidden) | set(split.vectors)]
    else:
        assert groups == [set(names.values()) for names in backend.smap.names]
        assert groups[0] == {"embed.weight"} and groups[-1] == {"head.weight"}


@pytest.mark.parametrize(("settings", "budget", "multiplier"), [
    ({"outer_schedule": "wsd", "cooldown": 1.0}, 1, 0.5),  # a one-step cooldown: half the line search's step
    ({"outer_schedule": "wsd", "cooldown": 0.2}, 1000, 1.0),  # its cooldown still far away
    ({"outer_warmup": 0.5}, 4, 0.5),  # the first of 2 warmup steps (half of a budget of 4)
])
def test_the_outer_schedule_scales_the_step_the_line_search_chose(setup, settings, budget, multiplier):
    s = setup
    model = tiny_model(dtype=torch.float64, **SMALL)
    cls = get_backend("gn")
    backend = backend_for(cls, model, make_hyper(cls, dict(ls_batches=1, ls_range=6, **settings)), 4)
    backend.budget = budget  # as the host sets it for a cooldown branch
    assert backend.outer_multiplier() == multiplier
    anchor = {n: p.detach().clone() for n, p in model.named_parameters()}
    backend.step(context(model, real_batches(s["data"], 2, 2, T, V), Drawer(s["data"], 2, T, V)))
    scale = backend.last_scale  # the line search's s, chosen on the unscaled direction
    assert backend.last_ls_losses[candidates(6).index(scale)] == min(backend.last_ls_losses)
    for n, p in model.named_parameters():  # θ = θ0 + m s d
        expected = anchor[n] + (multiplier * scale) * (backend.inner[n].detach() - anchor[n])
        torch.testing.assert_close(p.detach(), expected, rtol=0, atol=1e-15)


@pytest.mark.parametrize("name, extra", [("gn", {}), ("gn-prox-linear", {}), ("layerwise-gn", {}),
                                         ("layerwise-gn", {"product": "jvp"}), ("gn", {"product": "forward_ad"})])
def test_an_inner_gradient_in_sub_batches_is_the_whole_micro_batchs(name, extra, setup):
    """The memory-saving path (``sub_batch``: pieces of the micro-batch, accumulated) takes the step the whole
    micro-batch takes, in float64 to rounding, through every product path and the line search."""
    s, cls = setup, get_backend(name)
    batches = real_batches(s["data"], 2, 4, T, V)  # 4 sequences a micro-batch: pieces of 3 and 1 (uneven)
    steps = {}
    for sub_batch in (0, 3):
        model = tiny_model(dtype=torch.float64, **SMALL)
        backend = backend_for(cls, model, make_hyper(cls, dict(ls_range=4, sub_batch=sub_batch, **extra)), 5)
        loss = backend.step(context(model, batches, Drawer(s["data"], 2, T, V)))
        steps[sub_batch] = (loss, backend.last_model_loss, torch.cat([p.detach().flatten() for p in model.parameters()]))
    for sub_batch in (3,):
        assert steps[sub_batch][0] == pytest.approx(steps[0][0], rel=1e-12)
        assert steps[sub_batch][1] == pytest.approx(steps[0][1], rel=1e-10)
        torch.testing.assert_close(steps[sub_batch][2], steps[0][2], rtol=1e-10, atol=1e-12)
    assert not torch.equal(steps[0][2], torch.cat([p.detach().flatten() for p in tiny_model(
        dtype=torch.float64, **SMALL).parameters()]))  # the step moved the model
