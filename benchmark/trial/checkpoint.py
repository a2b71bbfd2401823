"""The one checkpoint format. A warm start is a checkpoint that holds weights only; a resume checkpoint
also holds the backend's state, the trial's progress and the RNG, everything needed to continue a trial
exactly. Written atomically, read with ``weights_only`` (tensors and plain containers, nothing executable)."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

import torch

from benchmark.files import atomic_write


@dataclass
class Checkpoint:
    model: dict[str, torch.Tensor]  # the model's state dict, on the CPU
    backend: dict | None = None  # Backend.state_dict()
    progress: dict | None = None  # {"host": the module's counters, "trial": the evaluation's state}
    rng: torch.Tensor | None = None  # torch.get_rng_state()

    @property
    def resumes(self) -> bool:
        """A checkpoint taken mid-trial (not a warm start)."""
        return self.progress is not None

    def save(self, path: str | os.PathLike) -> None:
        state = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        atomic_write(path, lambda f: torch.save(state, f))

    @classmethod
    def load(cls, path: str | os.PathLike) -> Checkpoint:
        return cls(**torch.load(path, map_location="cpu", weights_only=True))


def cpu_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}
