"""The settings of the Gauss-Newton backends (``optimizers.gn``): the release's values by default; every
departure from the release is a recorded setting, off by default."""

from __future__ import annotations

from dataclasses import dataclass

from optimizers.gauss_newton.curvature import OBJECTIVES, TRUNK_PRODUCTS
from optimizers.gauss_newton.inner import INNER_OPTIMIZERS, INNER_SCHEDULES
from optimizers.gauss_newton.linesearch import LS_RULES
from optimizers.gauss_newton.logit_space import CHUNK_ELEMENTS
from optimizers.hyper import ANY, COUNT, FRACTION, NON_NEGATIVE, POSITIVE, UNIT, HyperBase, hyper
from optimizers.interface import MemoryModel


@dataclass(frozen=True)
class GNHyper(HyperBase):
    lr: float = hyper(0.01, POSITIVE)  # inner peak learning rate (Muon side; the AdamW side too unless adam_lr > 0)
    adam_lr: float = hyper(-1.0, ANY)  # inner AdamW lr; <= 0 means "same as lr" (the release shares one lr)
    inner_optimizer: str = hyper("muon", tuple(INNER_OPTIMIZERS))  # "muon" (Muon + AdamW, the release), "adamw", "sgd"
    momentum: float = hyper(0.95, UNIT)  # Muon
    ns_steps: int = hyper(5, COUNT)
    beta1: float = hyper(0.9, UNIT)  # inner AdamW
    beta2: float = hyper(0.999, UNIT)
    weight_decay: float = hyper(0.001, NON_NEGATIVE)  # inner AdamW, decoupled (the release's template)
    inner_clip: float = hyper(1.0, NON_NEGATIVE)  # each optimizer group clipped to its own global norm
    inner_schedule: str = hyper("cosine_restart", INNER_SCHEDULES)  # restarted each outer step, once over all, or none
    global_warmup: float = hyper(0.2, FRACTION)  # global_cosine: warmup fraction of all inner steps, from 0.1 lr
    end_lr: float = hyper(0.0, FRACTION)  # cosine floor, as a fraction of lr
    warm_start: bool = True  # carry the inner iterate and optimizer state across outer steps
    damping: float = hyper(0.0, NON_NEGATIVE)  # λ of the proximal term λ/2 ||Δ||²
    adaptive_damping: bool = False
    ls_range: int = hyper(5, COUNT)  # line-search candidates s = (1/√2)^i, i < ls_range
    ls_batches: int = hyper(0, NON_NEGATIVE)  # fresh micro-batches for the line search; 0 means K (the release)
    ls_reject: bool = False  # add s = 0 as a candidate
    ls_rule: str = hyper("all", LS_RULES)  # every candidate (the release) or stop at the first that does not improve
    ema: float = hyper(0.0, UNIT)  # EMA of the outer iterates for evaluation; 0 disables
    # The outer step θ0 + m(t)·s·d, m the schedule (optimizers.schedule) over outer steps: what a first-order
    # method's learning rate scales (the inner lr sets how far the local model is solved, which s rescales)
    outer_schedule: str = hyper("constant", ("constant", "wsd"))  # "constant": m = 1 (the release)
    outer_warmup: float = hyper(0.0, FRACTION)  # fraction of the step budget
    cooldown: float = hyper(0.2, FRACTION)  # wsd: the last fraction of the budget, cooled down linearly to 0
    objective: str = hyper("gn", OBJECTIVES)  # the quadratic model, or the true loss of the linearised model
    product: str = hyper("double_backward", TRUNK_PRODUCTS)  # how J0Δ is computed (curvature._trunk)
    fp32: bool = True  # run the GN step in fp32 even under a bf16/fp16 autocast (the paper runs GN in fp32)
    # sequences per piece of each inner gradient, accumulated into the micro-batch's (the same sum, a fraction
    # of the activations: at 150m the math attention kernel's scores under double backward dominate, which
    # product=forward_ad does not keep); 0: the whole micro-batch at once
    sub_batch: int = hyper(0, NON_NEGATIVE)


# What a step keeps, for the dry run's memory model (benchmark/sweep/estimate.py), fitted to the peak of real steps
# measured on CPU (scripts/step_memory.py; docs/scale.md). double_backward (at 45m and 150m): the model, anchor,
# inner iterate and its gradient, the Muon/AdamW states; logits (product and line search) in chunks of at most 16M
# entries, counted as one whole-batch copy; the math attention kernel's scores for every layer. forward_ad (at 45m,
# m = 1 and 2: 1.56 and 1.75 GiB; 150m, m = 1: 3.89): the same state, the blocks' activations of a plain forward,
# about 4.8 copies of the head's chunk of logits, no attention scores (the forward with dual numbers keeps nothing).
MEMORY = MemoryModel(state_bytes_per_parameter=25.5, logit_copies=0.94, attention_scores=True)
MEMORY_FORWARD_AD = MemoryModel(state_bytes_per_parameter=25.5, logit_copies=0.17, chunk_copies=4.8,
                                chunk_elements=CHUNK_ELEMENTS)
# layerwise GN holds more state (a gradient and inner state per block); its forward_ad model is full GN's with that
# state, not measured
LAYERWISE_MEMORY = MemoryModel(state_bytes_per_parameter=37.6, logit_copies=0.94, attention_scores=True)
LAYERWISE_MEMORY_FORWARD_AD = MemoryModel(state_bytes_per_parameter=37.6, logit_copies=0.17, chunk_copies=4.8,
                                          chunk_elements=CHUNK_ELEMENTS)
