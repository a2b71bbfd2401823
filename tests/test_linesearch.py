"""The Gauss-Newton line search (optimizers/gauss_newton/linesearch.py) on real text."""

import math

import pytest
import torch

from optimizers.gauss_newton.linesearch import candidates, line_search
from tests.helpers import SMALL, Drawer, T, V, context, dense_gauss_newton, tiny_model


@pytest.fixture(scope="module")
def setup(token_data):
    return dense_gauss_newton(token_data[1])


def test_candidates_halve_every_two_steps_and_may_include_rejection():
    assert candidates(5) == pytest.approx([1.0, 2**-0.5, 0.5, 2**-1.5, 0.25])
    assert candidates(2, reject=True)[-1] == 0.0


@pytest.mark.parametrize("reject", [False, True])
def test_line_search_returns_the_best_candidate_of_losses_computed_independently(setup, reject):
    s = setup
    model = tiny_model(dtype=torch.float64, **SMALL)
    anchor = {n: p.detach().clone() for n, p in model.named_parameters()}
    torch.manual_seed(3)
    direction = {n: 0.5 * torch.randn_like(t) for n, t in anchor.items()}
    cands = candidates(6, reject)
    ctx = context(model, [s["batch"]], Drawer(s["data"], 2, T, V))
    chosen, losses = line_search(ctx, anchor, direction, cands, n_batches=2)
    # the same two fresh micro-batches, evaluated by loading each candidate's weights into the model
    fresh = Drawer(s["data"], 2, T, V)(2)
    expected = []
    for scale in cands:
        with torch.no_grad():
            for n, p in model.named_parameters():
                p.copy_(anchor[n] + scale * direction[n])
        expected.append(sum(ctx.batch_loss(b).item() for b in fresh) / 2)
    assert losses == pytest.approx(expected, rel=1e-12)
    assert chosen == cands[expected.index(min(expected))] and (0.0 in cands) == reject
    if reject:  # never worse than not moving, on the line-search batches
        assert min(losses) <= losses[cands.index(0.0)]
    assert ctx.costs.forward == len(cands) * 2 + len(cands) * 2  # the search's passes, then ours


def test_a_lone_full_step_searches_nothing_and_non_finite_losses_never_win(setup):
    s = setup
    model = tiny_model(dtype=torch.float64, **SMALL)
    anchor = {n: p.detach().clone() for n, p in model.named_parameters()}
    ctx = context(model, [s["batch"]], lambda n: pytest.fail("drew a batch"))
    assert line_search(ctx, anchor, anchor, [1.0], 3) == (1.0, [])
    huge = {n: torch.full_like(t, 1e300) for n, t in anchor.items()}  # overflows at every s > 0
    ctx = context(model, [s["batch"]], Drawer(s["data"], 2, T, V))
    scale, losses = line_search(ctx, anchor, huge, candidates(3, reject=True), 1)
    assert scale == 0.0 and not math.isfinite(losses[0]) and math.isfinite(losses[-1])


def test_the_gn_line_search_loss_in_chunks_equals_the_models_loss():
    """GN's line search evaluates the same cross-entropy through the stages with the head's logits in
    chunks of 3 tokens; it equals the host's loss on the model's whole logits."""
    from models.layout import model_layout
    from models.transformer import lm_loss
    from optimizers.gauss_newton.curvature import chunked_loss

    model = tiny_model(dtype=torch.float64)
    smap = model_layout(model, model.cfg.max_seq_len).stages
    params = {n: p.detach() for n, p in model.named_parameters()}
    torch.manual_seed(0)
    batch = torch.randint(0, model.cfg.vocab_size, (3, model.cfg.max_seq_len + 1))
    x, y = batch[:, :-1], batch[:, 1:]
    got = chunked_loss(smap, chunk_elements=3 * model.cfg.vocab_size)(params, x, y)  # 3 tokens a chunk
    expected = lm_loss(model(x), y)
    assert float(got.detach()) == pytest.approx(float(expected.detach()), rel=1e-12)


@pytest.mark.parametrize("reject", [False, True])
def test_first_worse_stops_at_the_first_candidate_that_does_not_improve(setup, reject):
    """The cheaper rule evaluates the largest scales until one is no better, plus s = 0 when present:
    its losses are those of the rule ``all`` where it evaluated, NaN elsewhere, and its choice is the
    one ``rule_choice`` derives from every candidate's loss."""
    from models.transformer import lm_loss
    from optimizers.gauss_newton.linesearch import rule_choice
    from optimizers.interface import split_batch

    s = setup
    model = tiny_model(dtype=torch.float64, **SMALL)
    anchor = {n: p.detach().clone() for n, p in model.named_parameters()}
    torch.manual_seed(3)
    cands = candidates(8, reject)
    too_long = {n: 0.5 * torch.randn_like(t) for n, t in anchor.items()}  # the loss falls as s shrinks
    # too short, on any corpus: a small step down the gradient of the search's own batches (the loss rises
    # as s shrinks)
    x_y = [split_batch(b) for b in Drawer(s["data"], 2, T, V)(2)]
    grads = torch.autograd.grad(sum(lm_loss(model(x), y) for x, y in x_y), list(model.parameters()))
    norm = torch.sqrt(sum((g**2).sum() for g in grads))
    too_short = {n: -0.02 * g / norm for n, g in zip(anchor, grads, strict=True)}
    for direction in (too_long, too_short):
        full = context(model, [s["batch"]], Drawer(s["data"], 2, T, V))
        _, every = line_search(full, anchor, direction, cands, 2)
        cheap = context(model, [s["batch"]], Drawer(s["data"], 2, T, V))
        chosen, losses = line_search(cheap, anchor, direction, cands, 2, rule="first_worse")
        evaluated = [j for j, v in enumerate(losses) if not math.isnan(v)]
        assert [losses[j] for j in evaluated] == [every[j] for j in evaluated]
        assert chosen == rule_choice(cands, every, "first_worse")
        assert cheap.costs.forward == 2 * len(evaluated) <= full.costs.forward
        assert (cands.index(0.0) in evaluated) if reject else True
    assert len(evaluated) == 2 + reject  # the short step: s = 1 wins after s = 1/√2 is worse
    assert rule_choice(cands, every, "all") == cands[every.index(min(every))]
    with pytest.raises(ValueError, match="valid: all, first_worse"):
        line_search(cheap, anchor, direction, cands, 2, rule="best")
