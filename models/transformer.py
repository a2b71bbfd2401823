"""The decoder of the Gauss-Newton paper: pre-norm RMSNorm, RoPE, QK-LayerNorm, non-gated GELU MLP,
no biases (but QK-LayerNorm's, as in the release), untied embedding and head, init std 1/sqrt(fan_in)
(embedding std 1). RoPE rotates the two halves of each head rather than interleaved pairs: the same
function class up to a fixed permutation of the q/k features.

Attention goes through ``F.scaled_dot_product_attention``; code that needs forward-mode AD or double
backward (the Gauss-Newton backends) runs the model under ``sdpa_kernel(SDPBackend.MATH)``, whose
kernel is built from differentiable primitives (the CPU flash kernel has no forward AD).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from optimizers.layout import EMBEDDING, HEAD, HIDDEN, VECTOR


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int = 32000
    d_model: int = 512
    n_layers: int = 4
    n_heads: int = 8
    d_ff: int = 2048
    max_seq_len: int = 1024
    rope_base: float = 10_000.0
    norm_eps: float = 1e-6

    def __post_init__(self) -> None:
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model {self.d_model} is not divisible by n_heads {self.n_heads}")
        if (self.d_model // self.n_heads) % 2:
            raise ValueError("head dimension must be even for RoPE")

    def to_dict(self) -> dict:
        return asdict(self)


# Paper shapes (DESIGN §2). vocab_size is set by the workload's tokenizer.
PRESETS: dict[str, ModelConfig] = {
    "tiny": ModelConfig(vocab_size=256, d_model=32, n_layers=2, n_heads=2, d_ff=128, max_seq_len=64),
    "smoke": ModelConfig(vocab_size=512, d_model=64, n_layers=2, n_heads=2, d_ff=256, max_seq_len=64),
    "cpu": ModelConfig(vocab_size=512, d_model=64, n_layers=2, n_heads=4, d_ff=256, max_seq_len=64),
    # the one-GPU rung: 16.9M parameters at vocab 8192 (10.6M in the blocks)
    "17m": ModelConfig(vocab_size=8192, d_model=384, n_layers=6, n_heads=6, d_ff=1536, max_seq_len=256),
    "45m": ModelConfig(vocab_size=32000, d_model=512, n_layers=4, n_heads=8, d_ff=2048, max_seq_len=1024),
    "150m": ModelConfig(vocab_size=32000, d_model=768, n_layers=12, n_heads=16, d_ff=3072, max_seq_len=1024),
}


def model_config(name: str, **overrides) -> ModelConfig:
    if name not in PRESETS:
        raise KeyError(f"unknown model preset {name!r}; valid: {', '.join(PRESETS)}")
    return replace(PRESETS[name], **overrides)


def _rope_tables(seq_len: int, head_dim: int, base: float) -> tuple[torch.Tensor, torch.Tensor]:
    inv_freq_H2 = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim))
    angles_TxH2 = torch.outer(torch.arange(seq_len, dtype=torch.float64), inv_freq_H2)
    return angles_TxH2.cos().float(), angles_TxH2.sin().float()


def apply_rope(x_BxNxTxH: torch.Tensor, cos_TxH2: torch.Tensor, sin_TxH2: torch.Tensor) -> torch.Tensor:
    """Rotate consecutive halves (x1, x2) of each head by position-dependent angles."""
    seq_len = x_BxNxTxH.shape[-2]
    cos = cos_TxH2[:seq_len].to(x_BxNxTxH.dtype)
    sin = sin_TxH2[:seq_len].to(x_BxNxTxH.dtype)
    x1, x2 = x_BxNxTxH.chunk(2, dim=-1)
    return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.n_heads = cfg.n_heads
        self.head_dim = cfg.d_model // cfg.n_heads
        # Separate projections as in the release (wq, wk, wv, wo): a fused qkv matrix would make Muon
        # orthogonalise the three together and give SOAP one 3d x 3d factor.
        self.wq = nn.Linear(cfg.d_model, cfg.d_model, bias=False)
        self.wk = nn.Linear(cfg.d_model, cfg.d_model, bias=False)
        self.wv = nn.Linear(cfg.d_model, cfg.d_model, bias=False)
        self.out = nn.Linear(cfg.d_model, cfg.d_model, bias=False)
        # QK-LayerNorm as in the release: over the whole q (and k) projection, all heads together, with
        # scale and bias, before RoPE. It keeps attention logits bounded.
        self.q_norm = nn.LayerNorm(cfg.d_model, eps=cfg.norm_eps)
        self.k_norm = nn.LayerNorm(cfg.d_model, eps=cfg.norm_eps)
        cos, sin = _rope_tables(cfg.max_seq_len, self.head_dim, cfg.rope_base)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)

    def forward(self, x_BxTxD: torch.Tensor) -> torch.Tensor:
        B, T, D = x_BxTxD.shape
        q_BxTxD, k_BxTxD = self.q_norm(self.wq(x_BxTxD)), self.k_norm(self.wk(x_BxTxD))
        v_BxTxD = self.wv(x_BxTxD)
        q, k, v = (t.view(B, T, self.n_heads, self.head_dim).transpose(1, 2) for t in (q_BxTxD, k_BxTxD, v_BxTxD))
        q = apply_rope(q, self.rope_cos, self.rope_sin)  # (B, N, T, H)
        k = apply_rope(k, self.rope_cos, self.rope_sin)
        y_BxNxTxH = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.out(y_BxNxTxH.transpose(1, 2).reshape(B, T, D))


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.up = nn.Linear(cfg.d_model, cfg.d_ff, bias=False)
        self.down = nn.Linear(cfg.d_ff, cfg.d_model, bias=False)

    def forward(self, x_BxTxD: torch.Tensor) -> torch.Tensor:
        return self.down(F.gelu(self.up(x_BxTxD), approximate="tanh"))  # the release's (Flax) default GELU


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.attn_norm = nn.RMSNorm(cfg.d_model, eps=cfg.norm_eps)
        self.attn = Attention(cfg)
        self.mlp_norm = nn.RMSNorm(cfg.d_model, eps=cfg.norm_eps)
        self.mlp = MLP(cfg)

    def forward(self, x_BxTxD: torch.Tensor) -> torch.Tensor:
        x_BxTxD = x_BxTxD + self.attn(self.attn_norm(x_BxTxD))
        return x_BxTxD + self.mlp(self.mlp_norm(x_BxTxD))


class Transformer(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.final_norm = nn.RMSNorm(cfg.d_model, eps=cfg.norm_eps)
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=1.0 / math.sqrt(module.in_features))
            elif isinstance(module, nn.Embedding):
                # An embedding row is read, not multiplied: its fan-in is one token, so unit variance.
                nn.init.normal_(module.weight, std=1.0)
            elif isinstance(module, (nn.RMSNorm, nn.LayerNorm)):
                nn.init.ones_(module.weight)
                if getattr(module, "bias", None) is not None:
                    nn.init.zeros_(module.bias)

    def forward(self, idx_BxT: torch.Tensor) -> torch.Tensor:
        if idx_BxT.shape[1] > self.cfg.max_seq_len:
            raise ValueError(f"sequence length {idx_BxT.shape[1]} exceeds max_seq_len {self.cfg.max_seq_len}")
        x_BxTxD = self.embed(idx_BxT)
        for block in self.blocks:
            x_BxTxD = block(x_BxTxD)
        return self.head(self.final_norm(x_BxTxD))

    def parameter_roles(self) -> dict[str, str]:
        """Each parameter's role (``optimizers.layout``): the embedding, the head, the blocks' 2-D matrices
        (hidden), and every other parameter, the norms' 1-D scales (vector)."""
        ends = {id(self.embed.weight): EMBEDDING, id(self.head.weight): HEAD}
        return {n: ends.get(id(p), HIDDEN if p.ndim == 2 else VECTOR) for n, p in self.named_parameters()}

    def stage_modules(self) -> list[nn.Module]:
        """The network as a chain of stages, each a function of the previous stage's output: the
        embedding, each transformer block (the final norm joins the last), the head. Layerwise
        Gauss-Newton treats each stage as one block of parameters."""
        blocks: list[nn.Module] = list(self.blocks)
        blocks[-1] = nn.Sequential(blocks[-1], self.final_norm)
        return [self.embed, *blocks, self.head]

    def stage_flops(self, seq_len: int) -> list[float]:
        """Forward FLOPs per token of each stage (matmuls and attention scores): relative costs."""
        d, T = self.cfg.d_model, seq_len
        block = 2 * (4 * d * d + 2 * d * self.cfg.d_ff) + 4 * T * d
        return [0.0, *([float(block)] * self.cfg.n_layers), 2.0 * d * self.cfg.vocab_size]

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def lm_loss(logits_BxTxV: torch.Tensor, targets_BxT: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy in nats."""
    if logits_BxTxV.dtype in (torch.float16, torch.bfloat16):
        logits_BxTxV = logits_BxTxV.float()  # softmax in at least fp32
    return F.cross_entropy(logits_BxTxV.flatten(0, 1), targets_BxT.flatten())
