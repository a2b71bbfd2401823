"""What a backend may know of the model it trains, and nothing more: each trainable parameter's role and the
network as a chain of stages with their FLOPs. The host produces a ``ModelLayout`` once from the small
interface every hosted model declares (``models.layout``) and hands it to the backend's constructor; a
backend never opens the model itself (AlgoPerf hands a submission its parameters' types the same way).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call
from torch.nn.attention import SDPBackend, sdpa_kernel

# Parameter roles. The Muon chain, SOAP's split and Gauss-Newton's inner optimizers and clipping groups are
# built from them.
EMBEDDING = "embedding"  # token embedding: rows are read, not multiplied
HEAD = "head"  # the output projection to the vocabulary
HIDDEN = "hidden"  # 2-D matrices inside the network's blocks
VECTOR = "vector"  # everything else: norm scales, biases
ROLES = (EMBEDDING, HEAD, HIDDEN, VECTOR)


@dataclass
class StageMap:
    """The network as a chain of stages (embedding, blocks, head), each a function of the previous one's
    output, and, for each stage, the model-level names of its parameters."""

    stages: list[nn.Module]
    names: list[dict[str, str]]  # per stage: stage-local name -> model name
    flops: list[float]  # forward FLOPs per token of each stage

    def __len__(self) -> int:
        return len(self.stages)

    def suffix_fraction(self, start: int) -> float:
        """Share of a full forward pass spent in stages ``start..``."""
        return sum(self.flops[start:]) / sum(self.flops)

    def stage_params(self, s: int, params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {local: params[name] for local, name in self.names[s].items()}

    @torch.no_grad()
    def activations(self, params: dict[str, torch.Tensor], x: torch.Tensor) -> list[torch.Tensor]:
        """Input of every stage at ``params`` (acts[0] is the token ids)."""
        acts = [x]
        with sdpa_kernel(SDPBackend.MATH):
            for s in range(len(self.stages) - 1):
                acts.append(functional_call(self.stages[s], self.stage_params(s, params), (acts[-1],)))
        return acts

    def run(self, start: int, x: torch.Tensor, stage_params: list[dict[str, torch.Tensor]]) -> torch.Tensor:
        for s in range(start, len(self.stages)):
            x = functional_call(self.stages[s], stage_params[s], (x,))
        return x


@dataclass
class ModelLayout:
    """Each trainable parameter's role (model order) and the stages."""

    roles: dict[str, str]  # parameter name -> one of ROLES
    stages: StageMap

    def named(self, *roles: str) -> list[str]:
        """Names of the parameters with any of ``roles``, in model order."""
        return [n for n, r in self.roles.items() if r in roles]
