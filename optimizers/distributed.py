"""Reductions over the data-parallel group, which every backend calls itself (the harness runs no
DistributedDataParallel wrapper: Gauss-Newton reduces every inner gradient, not one per step)."""

from __future__ import annotations

import torch
import torch.distributed as dist


class Reducer:
    """Means over the data-parallel group; the identity without a process group. Every process holds the
    same number of sequences, so a mean of per-process means is the global mean."""

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


def process_rank() -> tuple[int, int]:
    """(rank, world size) of this process in the data-parallel group; (0, 1) without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1
