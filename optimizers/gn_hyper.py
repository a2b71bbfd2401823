"""The settings of the Gauss-Newton backends (``optimizers.gn``): the release's values by default; every
departure from the release is a recorded setting, off by default."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GNHyper:
    lr: float = 0.01  # inner peak learning rate (Muon side; the AdamW side too unless adam_lr > 0)
    adam_lr: float = -1.0  # inner AdamW lr; <= 0 means "same as lr" (the release shares one lr)
    inner_optimizer: str = "muon"  # "muon" (Muon + AdamW, the release), "adamw" or "sgd"
    momentum: float = 0.95  # Muon
    ns_steps: int = 5
    beta1: float = 0.9  # inner AdamW
    beta2: float = 0.999
    weight_decay: float = 0.001  # inner AdamW, decoupled (the release's template)
    inner_clip: float = 1.0  # each optimizer group clipped to its own global norm
    inner_schedule: str = "cosine_restart"  # "cosine_restart", "global_cosine" or "constant"
    global_warmup: float = 0.2  # global_cosine: warmup fraction of all inner steps, from 0.1 lr
    end_lr: float = 0.0  # cosine floor, as a fraction of lr
    warm_start: bool = True  # carry the inner iterate and optimizer state across outer steps
    damping: float = 0.0  # λ of the proximal term λ/2 ||Δ||²
    adaptive_damping: bool = False
    ls_range: int = 5  # line-search candidates s = (1/√2)^i, i < ls_range
    ls_batches: int = 0  # fresh micro-batches for the line search; 0 means K (the release)
    ls_reject: bool = False  # add s = 0 as a candidate
    ls_rule: str = "all"  # "all" candidates (the release) or "first_worse" (stop at the first that does not improve)
    ema: float = 0.0  # EMA of the outer iterates for evaluation; 0 disables
    objective: str = "gn"  # "gn" (quadratic model) or "prox_linear"
    product: str = "double_backward"  # how J0Δ is computed: "double_backward" or "jvp" (curvature._trunk)
    fp32: bool = True  # run the GN step in fp32 even under a bf16/fp16 autocast (the paper runs GN in fp32)
