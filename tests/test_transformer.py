import math

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from models.transformer import PRESETS, Transformer, apply_rope, lm_loss, model_config


def expected_params(cfg) -> int:
    d, f, v, n = cfg.d_model, cfg.d_ff, cfg.vocab_size, cfg.n_layers
    per_block = 4 * d * d + 2 * d * f + 2 * d + 2 * (2 * d)  # wq, wk, wv, out; mlp; 2 RMSNorms; QK-LayerNorm w+b
    return 2 * v * d + n * per_block + d


@pytest.mark.parametrize("name", list(PRESETS))
def test_parameter_counts_match_the_shapes(name):
    cfg = model_config(name)
    with torch.device("meta"):
        model = Transformer(cfg)
    assert model.num_parameters() == expected_params(cfg)


def test_paper_45m_count():
    with torch.device("meta"):
        n = Transformer(model_config("45m")).num_parameters()
    assert 45.0e6 < n < 45.5e6  # the paper's 45M shape gives 45.36M at vocab 32000
    with torch.device("meta"):
        n150 = Transformer(model_config("150m")).num_parameters()
    assert 133e6 < n150 < 135e6  # the "150M" shape gives 134M at vocab 32000 (README says so)


def test_forward_shapes_and_initial_loss():
    torch.manual_seed(0)
    cfg = model_config("tiny")
    model = Transformer(cfg)
    idx = torch.randint(0, cfg.vocab_size, (3, 17))
    logits = model(idx)
    assert logits.shape == (3, 17, cfg.vocab_size)
    loss = lm_loss(logits, idx)
    assert torch.isfinite(loss)
    assert loss.item() > 0.5 * math.log(cfg.vocab_size)


def test_init_stds():
    torch.manual_seed(0)
    model = Transformer(model_config("smoke", vocab_size=4096))
    assert model.head.weight.std().item() == pytest.approx(1 / math.sqrt(64), rel=0.05)
    assert model.blocks[0].mlp.down.weight.std().item() == pytest.approx(1 / math.sqrt(256), rel=0.05)
    assert model.embed.weight.std().item() == pytest.approx(1.0, rel=0.05)


def test_causality_later_tokens_never_change_earlier_logits():
    torch.manual_seed(0)
    cfg = model_config("tiny")
    model = Transformer(cfg).double()
    idx = torch.randint(0, cfg.vocab_size, (2, 24))
    changed = idx.clone()
    changed[:, 15:] = torch.randint(0, cfg.vocab_size, (2, 9))
    a, b = model(idx), model(changed)
    torch.testing.assert_close(a[:, :15], b[:, :15], rtol=0, atol=1e-12)
    assert (a[:, 15:] - b[:, 15:]).abs().max() > 1e-6


def test_rope_preserves_norms_and_depends_only_on_offsets():
    torch.manual_seed(0)
    from models.transformer import _rope_tables

    head_dim, T = 8, 32
    cos, sin = _rope_tables(T, head_dim, 10_000.0)
    cos, sin = cos.double(), sin.double()
    q, k = torch.randn(head_dim, dtype=torch.float64), torch.randn(head_dim, dtype=torch.float64)
    rq = apply_rope(q.expand(1, 1, T, head_dim), cos, sin)[0, 0]
    rk = apply_rope(k.expand(1, 1, T, head_dim), cos, sin)[0, 0]
    torch.testing.assert_close(rq.norm(dim=-1), q.norm().expand(T))
    # <R_i q, R_j k> depends on i - j only
    assert torch.allclose(rq[5] @ rk[2], rq[20] @ rk[17])
    assert torch.allclose(rq[3] @ rk[3], q @ k)
    assert not torch.allclose(rq[5] @ rk[2], rq[5] @ rk[4])


def test_forward_mode_ad_through_attention():
    torch.manual_seed(0)
    model = Transformer(model_config("tiny")).double()
    params = {n: p.detach() for n, p in model.named_parameters()}
    tangents = {n: torch.randn_like(p) for n, p in params.items()}
    idx = torch.randint(0, 256, (2, 10))

    def f(p):
        return torch.func.functional_call(model, p, (idx,))

    with sdpa_kernel(SDPBackend.MATH):
        _, jvp = torch.func.jvp(f, (params,), (tangents,))
    eps = 1e-6
    plus = f({n: p + eps * tangents[n] for n, p in params.items()})
    minus = f({n: p - eps * tangents[n] for n, p in params.items()})
    torch.testing.assert_close(jvp, (plus - minus) / (2 * eps), rtol=1e-5, atol=1e-7)


def _fused_attention(attn, x_BxTxD):
    """The attention of a model with one fused qkv projection, from the split weights."""
    B, T, D = x_BxTxD.shape
    qkv = torch.cat([attn.wq.weight, attn.wk.weight, attn.wv.weight])  # (3D, D)
    q, k, v = (x_BxTxD @ qkv.T).chunk(3, dim=-1)
    q, k = attn.q_norm(q), attn.k_norm(k)
    q, k, v = (t.view(B, T, attn.n_heads, attn.head_dim).transpose(1, 2) for t in (q, k, v))
    q, k = apply_rope(q, attn.rope_cos, attn.rope_sin), apply_rope(k, attn.rope_cos, attn.rope_sin)
    y = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    return attn.out(y.transpose(1, 2).reshape(B, T, D))


def test_separate_projections_compute_what_the_fused_one_does():
    torch.manual_seed(0)
    model = Transformer(model_config("tiny")).double()
    idx = torch.randint(0, 256, (2, 12))
    split = model(idx)
    for block in model.blocks:
        block.attn.forward = lambda x, a=block.attn: _fused_attention(a, x)
    torch.testing.assert_close(model(idx), split, rtol=1e-12, atol=1e-12)


def _newton_schulz(g: torch.Tensor, steps: int = 5) -> torch.Tensor:
    """Muon's quintic Newton-Schulz orthogonalisation (Jordan et al. 2024), written out in float64."""
    a, b, c = 3.4445, -4.7750, 2.0315
    x = g.double() / (g.norm() + 1e-7)
    tall = x.shape[0] > x.shape[1]
    x = x.T if tall else x
    for _ in range(steps):
        s = x @ x.T
        x = a * x + (b * s + c * s @ s) @ x
    return x.T if tall else x


def test_muon_orthogonalises_each_projection_on_its_own():
    torch.manual_seed(1)
    model = Transformer(model_config("tiny"))
    attn = model.blocks[0].attn
    lm_loss(model(torch.randint(0, 256, (4, 16))), torch.randint(0, 256, (4, 16))).backward()
    grads = {n: getattr(attn, n).weight.grad.clone() for n in ("wq", "wk", "wv")}
    before = {n: getattr(attn, n).weight.detach().clone() for n in grads}
    opt = torch.optim.Muon([getattr(attn, n).weight for n in grads], lr=1.0, momentum=0.0, nesterov=False,
                           weight_decay=0.0)
    opt.step()
    fused = _newton_schulz(torch.cat(list(grads.values()))).chunk(3)
    for (name, grad), fused_rows in zip(grads.items(), fused):
        update = (before[name] - getattr(attn, name).weight.detach()).double()
        own = _newton_schulz(grad)
        assert ((update - own).norm() / own.norm()).item() < 0.05, name  # Muon's bf16 iteration vs float64
        assert ((update - fused_rows).norm() / fused_rows.norm()).item() > 0.2, name  # not the joint one
