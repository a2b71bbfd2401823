"""The one interface every backend implements, the registry, and pieces shared by backends.

The harness owns the loop, the data and the clock. Each outer step it hands the backend a
:class:`StepContext` (the model, this step's micro-batches, a way to draw fresh micro-batches, the loss,
the cost counters and the process-group reductions) and the backend updates the parameters in place.
First-order backends ignore what they do not use; Gauss-Newton backends call JVP/VJP through
``torch.func`` on the same handles.
"""

from __future__ import annotations

import dataclasses
import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
import torch.distributed as dist
from torch import nn

from models.transformer import lm_loss

Batch = torch.Tensor  # (m, T+1) token ids: inputs are [:, :-1], targets [:, 1:]


def split_batch(batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    return batch[:, :-1], batch[:, 1:]


# Forward-equivalent weights: a backward pass costs two forwards; a JVP (torch.func.jvp carries the
# primal and the tangent through the network together) also costs about two.
PASS_WEIGHTS = {"forward": 1.0, "backward": 2.0, "jvp": 2.0}


@dataclass
class Costs:
    """Model passes over one micro-batch each, and the tokens they consumed."""

    forward: float = 0.0  # partial passes (layerwise GN starts mid-network) count as fractions
    backward: float = 0.0
    jvp: float = 0.0
    tokens: int = 0

    def add(self, *, forward: float = 0, backward: float = 0, jvp: float = 0, tokens: int = 0) -> None:
        self.forward += forward
        self.backward += backward
        self.jvp += jvp
        self.tokens += tokens

    @property
    def forward_equivalents(self) -> float:
        return sum(PASS_WEIGHTS[k] * getattr(self, k) for k in PASS_WEIGHTS)

    def as_dict(self) -> dict:
        return {**dataclasses.asdict(self), "forward_equivalents": self.forward_equivalents}


class Reducer:
    """Reductions over the data-parallel group; the identity without a process group. Every process
    holds the same number of sequences, so a mean of per-process means is the global mean."""

    @property
    def world_size(self) -> int:
        return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1

    @staticmethod
    def _collective_device(tensor: torch.Tensor) -> torch.device:
        # NCCL reduces CUDA tensors only: host-side accumulators travel through the current GPU.
        if tensor.device.type == "cpu" and dist.get_backend() == "nccl":
            return torch.device("cuda", torch.cuda.current_device())
        return tensor.device

    def mean_(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.world_size > 1:
            buf = tensor.to(self._collective_device(tensor))
            dist.all_reduce(buf, op=dist.ReduceOp.SUM)
            tensor.copy_(buf / self.world_size)
        return tensor

    def mean_tensors_(self, tensors: list[torch.Tensor]) -> None:
        """In-place mean of many tensors with one collective (flattened into a single buffer)."""
        if self.world_size == 1 or not tensors:
            return
        flat = torch.cat([t.reshape(-1) for t in tensors])
        flat = flat.to(self._collective_device(flat))
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        flat /= self.world_size
        offset = 0
        for t in tensors:
            t.copy_(flat[offset : offset + t.numel()].view_as(t))
            offset += t.numel()


@dataclass
class StepContext:
    """What a backend receives for one outer step."""

    model: nn.Module
    microbatches: list[Batch]  # the step's K micro-batches (this process's rows of each, under DDP)
    num_microbatches: int  # K
    draw: Callable[[int], list[Batch]]  # n fresh micro-batches (line searches); counted as tokens seen
    step: int
    total_steps: int
    costs: Costs
    reducer: Reducer = field(default_factory=Reducer)
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = lm_loss

    def batch_loss(self, batch: Batch) -> torch.Tensor:
        """Loss of the current model on one micro-batch (forward only; counted)."""
        x, y = split_batch(batch)
        self.costs.add(forward=1)
        return self.loss_fn(self.model(x), y)


class Backend(ABC):
    """An optimizer behind the benchmark's interface. Subclasses set ``name``, ``Hyper`` (a dataclass
    of hyperparameters with the defaults) and ``search_space`` (grids over ``Hyper`` fields)."""

    name: ClassVar[str]
    Hyper: ClassVar[type]
    search_space: ClassVar[dict[str, list]]
    description: ClassVar[str] = ""
    # Rough forward-equivalent passes per micro-batch of a step, for plans and dry runs only (runs count
    # what they really do).
    forward_equivalents_per_microbatch: ClassVar[float] = 3.0
    # Rough memory model for dry runs: bytes of state per parameter (weights, gradients, optimizer
    # state, copies) and how many (tokens x vocab) fp32 logit-sized tensors a pass keeps alive.
    state_bytes_per_parameter: ClassVar[float] = 16.0
    logit_copies: ClassVar[float] = 3.0
    keeps_attention_scores: ClassVar[bool] = False  # the math attention kernel (forward-mode AD)
    supports_compile: ClassVar[bool] = False  # may the harness torch.compile the model for it

    def __init__(self, model: nn.Module, hp: Any, total_steps: int) -> None:
        self.model, self.hp, self.total_steps = model, hp, total_steps

    @abstractmethod
    def step(self, ctx: StepContext) -> float:
        """Run one outer step, update the model's parameters in place, return the mean training loss of
        the step's micro-batches (before the update)."""

    @abstractmethod
    def state_dict(self) -> dict: ...

    @abstractmethod
    def load_state_dict(self, state: dict) -> None: ...

    def diagnostics(self) -> dict:
        """Per-step numbers worth keeping in the run record (e.g. the line search's choice)."""
        return {}

    def eval_parameters(self) -> dict[str, torch.Tensor] | None:
        """Parameters to evaluate instead of the live ones (e.g. an EMA), or None."""
        return None


_REGISTRY: dict[str, type[Backend]] = {}


def register(cls: type[Backend]) -> type[Backend]:
    if cls.name in _REGISTRY:
        raise ValueError(f"backend {cls.name!r} registered twice")
    if not dataclasses.is_dataclass(cls.Hyper):
        raise TypeError(f"{cls.__name__}.Hyper must be a dataclass")
    unknown = set(cls.search_space) - {f.name for f in dataclasses.fields(cls.Hyper)}
    if unknown:
        raise TypeError(f"{cls.__name__}.search_space names unknown fields {sorted(unknown)}")
    _REGISTRY[cls.name] = cls
    return cls


def registry() -> dict[str, type[Backend]]:
    return dict(_REGISTRY)


class UnknownBackend(KeyError):
    def __str__(self) -> str:
        return self.args[0]


def get_backend(name: str) -> type[Backend]:
    if name not in _REGISTRY:
        raise UnknownBackend(f"unknown optimizer {name!r}; valid: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def make_hyper(cls: type[Backend], overrides: dict[str, Any] | None = None):
    """Build a backend's hyperparameters, checking every override's name and type."""
    fields = {f.name: f for f in dataclasses.fields(cls.Hyper)}
    hp = cls.Hyper()
    clean = {}
    for key, value in (overrides or {}).items():
        if key not in fields:
            raise ValueError(f"{cls.name} has no hyperparameter {key!r}; valid: {', '.join(fields)}")
        default = getattr(hp, key)
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise ValueError(f"{cls.name}.{key} must be true or false, got {value!r}")
        elif isinstance(default, (int, float)):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{cls.name}.{key} must be a number, got {value!r}")
            if isinstance(default, int) and not float(value).is_integer():
                raise ValueError(f"{cls.name}.{key} must be an integer, got {value!r}")
            value = type(default)(value)
        elif isinstance(default, str) and not isinstance(value, str):
            raise ValueError(f"{cls.name}.{key} must be a string, got {value!r}")
        clean[key] = value
    return dataclasses.replace(hp, **clean)


# ------------------------------------------------------------------------------------ shared pieces


def lr_multiplier(step: int, total_steps: int, schedule: str, warmup_frac: float, final_frac: float) -> float:
    """Linear warmup over ``warmup_frac`` of the budget, then cosine down to ``final_frac`` or constant."""
    warmup = int(round(warmup_frac * total_steps))
    if step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return final_frac + (1 - final_frac) * 0.5 * (1 + math.cos(math.pi * progress))
    raise ValueError(f"unknown schedule {schedule!r}; valid: cosine, constant")


def hidden_matrix_names(model: nn.Module) -> set[str]:
    """Names of the hidden 2-D matrices of the transformer blocks (not the embedding nor the head)."""
    embed_head = {id(p) for m in (model.embed, model.head) for p in m.parameters()}
    return {n for n, p in model.named_parameters() if p.ndim == 2 and id(p) not in embed_head}


def partition_parameters(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """Hidden 2-D matrices of the transformer blocks vs everything else (embedding, head, norms).

    Asserts that the two groups cover every trainable parameter exactly once.
    """
    hidden_names = hidden_matrix_names(model)
    hidden, rest = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (hidden if name in hidden_names else rest).append(p)
    check_ownership(model, [hidden, rest])
    return hidden, rest


def check_ownership(model: nn.Module, groups: list[list[nn.Parameter]]) -> None:
    owned = [id(p) for g in groups for p in g]
    every = [id(p) for p in model.parameters() if p.requires_grad]
    if len(owned) != len(set(owned)):
        raise AssertionError("a parameter is owned by two optimizer groups")
    if set(owned) != set(every):
        raise AssertionError(f"{len(set(every) - set(owned))} parameters have no optimizer")


@dataclass(frozen=True)
class FirstOrderHyper:
    """What ``FirstOrder.step`` reads: global gradient clipping and the learning-rate schedule."""

    grad_clip: float = 1.0
    schedule: str = "cosine"  # "cosine" or "constant"
    warmup: float = 0.05  # fraction of the step budget
    final_lr: float = 0.1  # cosine floor, as a fraction of lr


class FirstOrder(Backend):
    """Gradient accumulation over the step's micro-batches, one all-reduce, clipping, one update.

    Subclasses build their ``torch.optim`` optimizers; the learning-rate schedule (warmup, then cosine
    or constant) multiplies every group's base ``lr``.
    """

    supports_compile = True

    def __init__(self, model: nn.Module, hp: Any, total_steps: int) -> None:
        super().__init__(model, hp, total_steps)
        self.optimizers = self.build_optimizers(model)
        self.params = [p for p in model.parameters() if p.requires_grad]
        check_ownership(model, [[p for g in o.param_groups for p in g["params"]] for o in self.optimizers])
        for opt in self.optimizers:
            for group in opt.param_groups:
                group.setdefault("base_lr", group["lr"])
        self.step_count = 0

    @abstractmethod
    def build_optimizers(self, model: nn.Module) -> list[torch.optim.Optimizer]: ...

    def step(self, ctx: StepContext) -> float:
        for p in self.params:
            p.grad = None
        total = torch.zeros((), dtype=torch.float64)
        for batch in ctx.microbatches:
            loss = ctx.batch_loss(batch)
            (loss / ctx.num_microbatches).backward()
            ctx.costs.add(backward=1)
            total += loss.detach().double().cpu()
        grads = [p.grad for p in self.params if p.grad is not None]
        ctx.reducer.mean_tensors_(grads)
        if self.hp.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.params, self.hp.grad_clip)
        mult = lr_multiplier(self.step_count, self.total_steps, self.hp.schedule, self.hp.warmup, self.hp.final_lr)
        for opt in self.optimizers:
            for group in opt.param_groups:
                group["lr"] = group["base_lr"] * mult
            opt.step()
        self.step_count += 1
        return float(ctx.reducer.mean_(total)) / ctx.num_microbatches

    def state_dict(self) -> dict:
        return {"step_count": self.step_count, "optimizers": [o.state_dict() for o in self.optimizers]}

    def load_state_dict(self, state: dict) -> None:
        self.step_count = state["step_count"]
        for opt, s in zip(self.optimizers, state["optimizers"], strict=True):
            opt.load_state_dict(s)


def adamw_kernel(params: list[nn.Parameter]) -> dict:
    """Fused AdamW on CUDA parameters, the multi-tensor (foreach) kernel elsewhere."""
    return {"fused": True} if params and params[0].is_cuda else {"foreach": True}
