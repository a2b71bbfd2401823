"""The one interface every backend implements.

The harness owns the loop, the data and the clock. Each outer step it hands the backend a
:class:`StepContext` (the model, this step's micro-batches, a way to draw fresh micro-batches, the loss,
the cost counters and the process-group reductions) and the backend updates the parameters in place.
First-order backends ignore what they do not use; Gauss-Newton backends call JVP/VJP through
``torch.func`` on the same handles.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from optimizers.distributed import Reducer
from optimizers.layout import ModelLayout

Batch = torch.Tensor  # (m, T+1) token ids: inputs are [:, :-1], targets [:, 1:]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (logits, targets) -> mean loss


def split_batch(batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    return batch[:, :-1], batch[:, 1:]


# Forward-equivalent weights: a backward pass costs two forwards; a JVP (torch.func.jvp carries the
# primal and the tangent through the network together) also costs about two.
PASS_WEIGHTS = {"forward": 1.0, "backward": 2.0, "jvp": 2.0}


@dataclass
class Costs:
    """Model passes over one micro-batch each, and the tokens they consumed. ``a += b`` adds counters."""

    forward: float = 0.0  # partial passes (layerwise GN starts mid-network) count as fractions
    backward: float = 0.0
    jvp: float = 0.0
    tokens: int = 0

    def add(self, *, forward: float = 0, backward: float = 0, jvp: float = 0, tokens: int = 0) -> None:
        self += Costs(forward, backward, jvp, tokens)

    def __iadd__(self, other: Costs) -> Costs:
        for f in dataclasses.fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        return self

    def __add__(self, other: Costs) -> Costs:
        total = Costs()
        total += self
        total += other
        return total

    def __mul__(self, n: float) -> Costs:
        return Costs(self.forward * n, self.backward * n, self.jvp * n, int(self.tokens * n))

    @property
    def forward_equivalents(self) -> float:
        return sum(PASS_WEIGHTS[k] * getattr(self, k) for k in PASS_WEIGHTS)

    def as_dict(self) -> dict:
        return {**dataclasses.asdict(self), "forward_equivalents": self.forward_equivalents}

    @classmethod
    def from_dict(cls, d: dict) -> Costs:
        return cls(**{f.name: d[f.name] for f in dataclasses.fields(cls)})


@dataclass
class StepContext:
    """What a backend receives for one outer step."""

    model: nn.Module
    microbatches: list[Batch]  # the step's K micro-batches (this process's rows of each, under DDP)
    draw: Callable[[int], list[Batch]]  # n fresh micro-batches (line searches); counted as tokens seen
    costs: Costs
    loss_fn: LossFn  # the workload's loss, handed over by the host
    reducer: Reducer = field(default_factory=Reducer)

    def batch_loss(self, batch: Batch) -> torch.Tensor:
        """Loss of the current model on one micro-batch (forward only; counted)."""
        x, y = split_batch(batch)
        self.costs.add(forward=1)
        return self.loss_fn(self.model(x), y)


@dataclass(frozen=True)
class MemoryModel:
    """A rough peak-memory model for dry runs (fp32, ``benchmark.sweep.estimate.memory_bytes``): bytes of state
    per parameter (weights, gradients, optimizer state, copies) alive through a step, how many (vocab)-wide
    logit rows per token differentiated at once stay alive, and whether the math attention kernel keeps (heads x T x
    T) scores for the sequences differentiated at once (forward-mode AD and double backward need it)."""

    state_bytes_per_parameter: float = 16.0
    logit_copies: float = 2.0
    attention_scores: bool = False
    # copies of a chunk of the head's logits alive at once, where the head is taken in chunks of at most
    # ``chunk_elements`` entries (a chunk is all of them where the batch's logits are fewer)
    chunk_copies: float = 0.0
    chunk_elements: int = 0


class Backend(ABC):
    """An optimizer behind the benchmark's interface. Subclasses set ``name``, ``Hyper`` (a dataclass
    of hyperparameters with the defaults) and ``search_space`` (grids over ``Hyper`` fields), and say
    what one step costs (``expected_costs``, held equal to what ``step`` counts by a contract test)."""

    name: ClassVar[str]
    Hyper: ClassVar[type]
    search_space: ClassVar[dict[str, list]]
    description: ClassVar[str] = ""
    # "first-order" (gradients only) or what curvature it uses; reports compare against the best first-order
    family: ClassVar[str] = "first-order"
    memory: ClassVar[MemoryModel] = MemoryModel()
    supports_compile: ClassVar[bool] = False  # may the harness torch.compile the model for it
    # K micro-batches in one step act as one batch of them (first-order gradient accumulation)
    accumulates: ClassVar[bool] = False
    # every batch-dependent quantity goes through ``ctx.reducer``, so DDP ranks take the same step
    ddp: ClassVar[bool] = False
    # the settings that turn on the warmup-stable-decay schedule (its cooldown fraction is the setting
    # ``cooldown``); empty where the backend has none (the robustness suite then gives it no WSD row)
    wsd: ClassVar[dict] = {}

    def __init__(self, model: nn.Module, hp: Any, total_steps: int, layout: ModelLayout) -> None:
        """``model`` is for its parameters only (``named_parameters``, ``functional_call``); what a backend may
        know of its structure, each parameter's role and the stages, comes in ``layout``."""
        self.model, self.hp, self.total_steps, self.layout = model, hp, total_steps, layout
        # The step at which a decaying schedule ends: the workload's budget unless the host sets it; a cooldown
        # branch sets a shorter one (benchmark/trial/branches.py). Warmups stay fractions of ``total_steps``.
        self.budget: int = total_steps

    @classmethod
    @abstractmethod
    def expected_costs(cls, layout: ModelLayout, hp: Any, k: int) -> Costs:
        """The passes one outer step over ``k`` micro-batches runs, counted as ``step`` counts them (tokens
        stay 0: the host counts them). ``layout`` may be that of a model on the meta device."""

    @classmethod
    def draws_per_step(cls, hp: Any, k: int) -> int:
        """Fresh micro-batches one outer step draws beyond its ``k`` (line searches)."""
        return 0

    @classmethod
    def sequences_at_once(cls, hp: Any, micro_batch: int) -> int:
        """How many of a micro-batch's ``micro_batch`` sequences a step differentiates at once (the memory model's
        activations scale with it)."""
        return micro_batch

    @classmethod
    def memory_model(cls, hp: Any) -> MemoryModel:
        """The memory model of a step with settings ``hp`` (``memory`` unless a setting changes what is kept)."""
        return cls.memory

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
