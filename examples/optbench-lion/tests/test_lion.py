"""The example plugin's own tests: its update against the formula written out, and optbench's contract."""

import torch
from optbench_lion import Lion, LionOptimizer

from benchmark.testing import check_backend


def test_two_steps_follow_the_formula():
    torch.manual_seed(0)
    p = torch.nn.Parameter(torch.randn(5))
    grads = [torch.randn(5), torch.randn(5)]
    opt = LionOptimizer([p], lr=0.1, betas=(0.9, 0.99), weight_decay=0.01)
    expected, m = p.detach().clone(), torch.zeros(5)
    for g in grads:
        p.grad = g.clone()
        opt.step()
        c = 0.9 * m + 0.1 * g
        expected = expected - 0.1 * (torch.sign(c) + 0.01 * expected)
        m = 0.99 * m + 0.01 * g
    torch.testing.assert_close(p.detach(), expected, rtol=0, atol=1e-6)


def test_the_backend_keeps_the_contract():
    check_backend(Lion, ddp=True)
