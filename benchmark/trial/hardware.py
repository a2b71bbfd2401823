"""Where and how trials run."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Hardware:
    """``precision`` and ``compile`` change the numbers, so they enter the run identity (see
    ``Trial.numerics``); the rest does not."""

    accelerator: str = "auto"
    devices: int = 1
    num_nodes: int = 1
    precision: str = "32-true"  # Lightning precision: "32-true" or "bf16-mixed"
    tf32: bool = True  # TF32 tensor-core matmuls for fp32 work on GPUs
    compile: bool = False  # torch.compile the model (first-order backends; GN keeps eager for torch.func)
    logger: str = "csv"  # where per-step metrics go besides the record (benchmark.loggers)

    @property
    def multi_process(self) -> bool:
        return self.devices > 1 or self.num_nodes > 1

    def numerics(self) -> str:
        parts = [] if self.precision == "32-true" else [self.precision]
        return "+".join([*parts, "compile"] if self.compile else parts)
