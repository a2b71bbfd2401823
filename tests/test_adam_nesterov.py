"""Adam with Nesterov momentum (optimizers/first_order/adam_nesterov.py) against optax's formula written in numpy."""

import copy

import numpy as np
import torch

from optimizers.first_order.adam_nesterov import AdamNesterov


def _optax_adamw_nesterov(p, grads, lr, b1, b2, eps, wd):
    """optax.adamw(nesterov=True): scale_by_adam(nesterov=True), add_decayed_weights, scale(-lr)."""
    m, v = np.zeros_like(p), np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat = b1 * m / (1 - b1 ** (t + 1)) + (1 - b1) * g / (1 - b1**t)
        v_hat = v / (1 - b2**t)
        p = p - lr * (m_hat / (np.sqrt(v_hat) + eps) + wd * p)
    return p


def test_matches_optax_nesterov_adamw_over_many_steps():
    rng = np.random.default_rng(0)
    p0 = rng.normal(size=(7,))
    grads = [rng.normal(size=(7,)) * (1 + t) for t in range(25)]
    param = torch.nn.Parameter(torch.tensor(p0))
    opt = AdamNesterov([param], lr=0.03, betas=(0.9, 0.95), eps=1e-8, weight_decay=1e-2)
    for g in grads:
        param.grad = torch.tensor(g)
        opt.step()
    expected = _optax_adamw_nesterov(p0, grads, 0.03, 0.9, 0.95, 1e-8, 1e-2)
    np.testing.assert_allclose(param.detach().numpy(), expected, rtol=1e-12, atol=1e-14)


def test_state_round_trips_and_differs_from_plain_adam():
    torch.manual_seed(0)
    a, b = torch.nn.Parameter(torch.randn(4)), torch.nn.Parameter(torch.randn(4))
    b.data.copy_(a.data)
    opt_a, opt_b = AdamNesterov([a], lr=0.1), torch.optim.Adam([b], lr=0.1)
    for _ in range(3):
        g = torch.randn(4)
        a.grad, b.grad = g.clone(), g.clone()
        opt_a.step()
        opt_b.step()
    assert not torch.allclose(a, b)
    c = torch.nn.Parameter(a.detach().clone())
    opt_c = AdamNesterov([c], lr=0.1)
    opt_c.load_state_dict(copy.deepcopy(opt_a.state_dict()))  # as a checkpoint would hand it over
    g = torch.randn(4)
    a.grad, c.grad = g.clone(), g.clone()
    opt_a.step()
    opt_c.step()
    assert torch.equal(a, c)
