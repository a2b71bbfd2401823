"""The shared body of first-order backends: gradients accumulated over the step's micro-batches, one
all-reduce, global clipping, the learning-rate schedule, one update of every ``torch.optim`` optimizer."""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from optimizers.hyper import FRACTION, NON_NEGATIVE, HyperBase, hyper
from optimizers.interface import Backend, Costs, StepContext
from optimizers.layout import ModelLayout
from optimizers.partition import check_ownership, optimizer_groups
from optimizers.schedule import SHAPES, cooldown_steps, warmup_then_decay


@dataclass(frozen=True)
class FirstOrderHyper(HyperBase):
    """What ``FirstOrder.step`` reads: global gradient clipping and the learning-rate schedule."""

    grad_clip: float = hyper(1.0, NON_NEGATIVE)  # each of the backend's clip groups to this global norm; 0 disables
    schedule: str = hyper("constant", SHAPES)  # "constant" (the release, from the AdamW warm start), "cosine" or "wsd"
    warmup: float = hyper(0.0, FRACTION)  # fraction of the step budget
    final_lr: float = hyper(0.1, FRACTION)  # cosine floor, as a fraction of lr
    cooldown: float = hyper(0.2, FRACTION)  # wsd: the last fraction of the budget, cooled down linearly to 0


def adamw_kernel(params: list[nn.Parameter]) -> dict:
    """Fused AdamW on CUDA parameters, the multi-tensor (foreach) kernel elsewhere."""
    return {"fused": True} if params and params[0].is_cuda else {"foreach": True}


class FirstOrder(Backend):
    """Subclasses build their ``torch.optim`` optimizers; the schedule multiplies every group's base lr."""

    supports_compile = True
    accumulates = True
    wsd = {"schedule": "wsd"}
    ddp = True  # gradients all-reduced once a step

    def __init__(self, model: nn.Module, hp: Any, total_steps: int, layout: ModelLayout) -> None:
        super().__init__(model, hp, total_steps, layout)
        self.optimizers = self.build_optimizers(model)
        self.params = [p for p in model.parameters() if p.requires_grad]
        check_ownership(optimizer_groups(self.optimizers), self.params)
        for opt in self.optimizers:
            for group in opt.param_groups:
                group.setdefault("base_lr", group["lr"])
        self.step_count = 0

    @abstractmethod
    def build_optimizers(self, model: nn.Module) -> list[torch.optim.Optimizer]: ...

    def clip_groups(self) -> list[list[nn.Parameter]]:
        """Parameters clipped together to ``grad_clip`` (the release clips per optimizer chain)."""
        return [self.params]

    @classmethod
    def expected_costs(cls, layout: ModelLayout, hp: Any, k: int) -> Costs:
        return Costs(forward=k, backward=k)  # one forward and one backward per micro-batch

    def lr_multiplier(self) -> float:
        hp = self.hp
        warmup = int(round(hp.warmup * self.total_steps))  # of the workload's budget: the same in every branch
        return warmup_then_decay(self.step_count, self.budget, warmup, shape=hp.schedule, final=hp.final_lr,
                                 cooldown=cooldown_steps(hp.cooldown, self.budget))

    def step(self, ctx: StepContext) -> float:
        for p in self.params:
            p.grad = None
        total = torch.zeros((), dtype=torch.float64)
        for batch in ctx.microbatches:
            loss = ctx.batch_loss(batch)
            (loss / len(ctx.microbatches)).backward()
            ctx.costs.add(backward=1)
            total += loss.detach().double().cpu()
        grads = [p.grad for p in self.params if p.grad is not None]
        ctx.reducer.mean_tensors_(grads)
        if self.hp.grad_clip > 0:
            for group in self.clip_groups():
                torch.nn.utils.clip_grad_norm_(group, self.hp.grad_clip)
        mult = self.lr_multiplier()
        for opt in self.optimizers:
            for group in opt.param_groups:
                group["lr"] = group["base_lr"] * mult
            opt.step()
        self.step_count += 1
        return float(ctx.reducer.mean_(total)) / len(ctx.microbatches)

    def state_dict(self) -> dict:
        return {"step_count": self.step_count, "optimizers": [o.state_dict() for o in self.optimizers]}

    def load_state_dict(self, state: dict) -> None:
        self.step_count = state["step_count"]
        for opt, s in zip(self.optimizers, state["optimizers"], strict=True):
            opt.load_state_dict(s)
