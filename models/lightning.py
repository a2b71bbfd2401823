"""The LightningModule that hosts a transformer for one trial.

Manual optimization: the backend owns its optimizers and updates parameters itself; this module owns
the loop body (one outer step per batch), the evaluation grid, the cost counters, divergence and early
stopping once every target is reached. Each batch is one outer step: this process's share of the step's
K micro-batches, a pure function of (seed, step), so resuming needs no loader replay.
"""

from __future__ import annotations

import copy
import math
import os
import resource
import time
from collections.abc import Callable
from pathlib import Path

import lightning as L
import torch
import torchmetrics
from torch.func import functional_call
from torch.utils.data import Dataset

from benchmark.data import MicroBatchStream
from optimizers.base import Backend, Costs, Reducer, StepContext, split_batch


class StepDataset(Dataset):
    """Item i = outer step ``start + i``: its K micro-batches stacked (K, m / world, T+1), this rank's
    rows of each.

    Every rank sees all K micro-batches but only rows ``rank::world`` of each, so the global batch, the
    data order and the sequence of inner steps (one per micro-batch, for Gauss-Newton) do not depend on
    the number of processes.
    """

    def __init__(self, stream: MicroBatchStream, k: int, start: int, stop: int):
        self.stream, self.k, self.start, self.stop = stream, k, start, stop

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def __getitem__(self, i: int) -> dict:
        rank, world = process_rank()  # read here: the dataset may be built before the process group
        if self.stream.micro_batch % world:
            raise ValueError(f"micro-batch of {self.stream.micro_batch} sequences does not split over {world} processes")
        step = self.start + i
        mbs = [self.stream.microbatch(step * self.k + j)[rank::world] for j in range(self.k)]
        return {"step": step, "tokens": torch.stack(mbs)}


def process_rank() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def peak_memory_mib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    # On the CPU: the process's resident high-water mark (not per trial when one process runs many).
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


class BenchModule(L.LightningModule):
    def __init__(
        self,
        model: torch.nn.Module,
        backend: Backend,
        k: int,
        total_steps: int,
        eval_grid: list[int],
        targets: tuple[float, ...],
        val_batches: list[torch.Tensor],
        draw_stream: MicroBatchStream,
        divergence_factor: float = 1.5,
        on_step: Callable[[BenchModule], None] | None = None,
        checkpoint_path: str | os.PathLike | None = None,
        make_backend: Callable[[torch.nn.Module], Backend] | None = None,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.model, self.backend = model, backend
        # Where the backend was built: a trial (fresh or resumed) always rebuilds it on the training device,
        # so both take the same kernels (e.g. fused AdamW on CUDA) and resume exactly.
        self.backend_device = next(model.parameters()).device
        self.k, self.total_steps = k, total_steps
        self.eval_grid, self.targets = set(eval_grid), tuple(targets)
        self.val_batches, self.draw_stream = val_batches, draw_stream
        self.divergence_factor = divergence_factor
        self.on_step = on_step
        self.make_backend = make_backend
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path else None
        self.val_loss = torchmetrics.MeanMetric(nan_strategy="disable")  # a NaN loss must show, not vanish
        self.reducer = Reducer()
        # Progress: everything a resumed run needs to continue exactly.
        self.step_idx = 0
        self.draw_cursor = 0
        self.costs = Costs()
        self.train_seconds = 0.0
        self.evals: list[dict] = []
        self.step_log: list[dict] = []
        self.status = "running"
        self.initial_loss: float | None = None
        self.run_device = torch.device("cpu")
        self.compile_model = False
        self.compiled = False

    def setup(self, stage: str) -> None:
        # Spawned DDP workers receive this module through torch.multiprocessing, which moves CPU tensors
        # into shared memory: every rank would then update the same parameters. Give each rank its own
        # copy (model and backend together, so the backend still points at this rank's model).
        if process_rank()[1] > 1:
            self.model, self.backend = copy.deepcopy((self.model, self.backend))

    def on_fit_start(self) -> None:
        self.run_device = self.device  # Lightning moves the module back to the CPU before on_fit_end
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)  # peaks are per trial, not per process
        if self.compile_model and not self.compiled:
            # In place (nn.Module.compile), so the backend's references stay valid. Gauss-Newton backends
            # differentiate through torch.func transforms and keep the eager model.
            if self.backend.supports_compile:
                self.model.compile()
                self.compiled = True
        # The backend was built (and possibly restored) beside the model on the CPU; once the Trainer has
        # moved the model to its device, rebuild it there from its own state so that every tensor it
        # holds (inner iterates, optimizer states) lives on that device too.
        if self.backend_device != self.device and self.make_backend is not None:
            state = self.backend.state_dict()
            self.backend = self.make_backend(self.model)
            self.backend.load_state_dict(state)
            self.backend_device = self.device
        self._check_ranks_agree()

    def _check_ranks_agree(self) -> None:
        """Without DDP's wrapper nothing broadcasts the weights: check that every rank starts from rank 0's."""
        if process_rank()[1] == 1:
            return
        with torch.no_grad():
            params = [p.detach().double() for p in self.model.parameters()]
            mine = torch.stack([sum(p.sum() for p in params), sum(p.square().sum() for p in params)])
        rank0 = mine.clone()
        torch.distributed.broadcast(rank0, src=0)
        differ = (mine != rank0).any().to(torch.int32)
        torch.distributed.all_reduce(differ, op=torch.distributed.ReduceOp.MAX)
        if differ.item():
            raise RuntimeError("the processes of this trial start from different weights")

    # ------------------------------------------------------------------------------------ loop body

    def _draw(self, n: int) -> list[torch.Tensor]:
        """Fresh micro-batches from the line-search stream, the same on every rank."""
        rank, world = process_rank()
        out = [self.draw_stream.microbatch(self.draw_cursor + j)[rank::world].to(self.device) for j in range(n)]
        self.draw_cursor += n
        return out

    def training_step(self, batch: dict, batch_idx: int) -> None:
        step = int(batch["step"])
        if step != self.step_idx:
            raise RuntimeError(f"data step {step} != module step {self.step_idx}")
        if step == 0 and 0 in self.eval_grid and not self.evals:
            self.evaluate()
        microbatches = list(batch["tokens"].unbind(0))
        step_costs = Costs()
        ctx = StepContext(
            model=self.model,
            microbatches=microbatches,
            num_microbatches=self.k,
            draw=self._draw,
            step=step,
            total_steps=self.total_steps,
            costs=step_costs,
            reducer=self.reducer,
        )
        draws_before = self.draw_cursor
        self.model.train()
        self._sync()
        t0 = time.perf_counter()
        loss = self.backend.step(ctx)
        self._sync()
        seconds = time.perf_counter() - t0
        # Tokens seen: the step's K micro-batches (all ranks) plus the fresh ones the backend drew.
        m, T = batch["tokens"].shape[1] * self.reducer.world_size, batch["tokens"].shape[2] - 1
        step_costs.add(tokens=(self.k + self.draw_cursor - draws_before) * m * T)
        self._account(step_costs, seconds)
        self.step_idx += 1
        self.step_log.append(
            {"step": self.step_idx, "train_loss": loss, "seconds": seconds, **step_costs.as_dict(),
             **self.backend.diagnostics()}
        )
        if self.initial_loss is None:
            self.initial_loss = loss
        if not math.isfinite(loss) or loss > self.divergence_factor * self.initial_loss:
            self.status = "diverged"
            self.trainer.should_stop = True
        elif self.step_idx in self.eval_grid:
            self.evaluate()
            if self.status == "running":
                self.save_resume_state()
        if self.on_step is not None:
            self.on_step(self)

    def _account(self, step_costs: Costs, seconds: float) -> None:
        # Under DDP each process runs every pass over 1/world of the rows, so its pass counts are the
        # global counts in units of whole micro-batches.
        for key in ("forward", "backward", "jvp", "tokens"):
            setattr(self.costs, key, getattr(self.costs, key) + getattr(step_costs, key))
        self.train_seconds += seconds

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    @torch.no_grad()
    def evaluate(self) -> float:
        was_training = self.model.training
        self.model.eval()
        params = self.backend.eval_parameters()
        self.val_loss.reset()
        rank, world = process_rank()
        for i, batch in enumerate(self.val_batches):
            if i % world != rank:
                continue
            x, y = split_batch(batch.to(self.device))
            logits = functional_call(self.model, params, (x,)) if params is not None else self.model(x)
            loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1).float(), y.flatten(), reduction="sum")
            self.val_loss.update(loss / y.numel(), weight=y.numel())
        val = float(self.val_loss.compute())
        self.model.train(was_training)
        self.evals.append(
            {
                "step": self.step_idx,
                "tokens": self.costs.tokens,
                "val_loss": val,
                "train_loss": self.step_log[-1]["train_loss"] if self.step_log else None,
                "forward_equivalents": self.costs.forward_equivalents,
                "train_seconds": self.train_seconds,
                "peak_memory_mib": peak_memory_mib(self.device),
            }
        )
        if not math.isfinite(val):
            self.status = "diverged"
            self.trainer.should_stop = True
        elif self.targets and val <= min(self.targets):
            self.status = "reached"
            self.trainer.should_stop = True
        return val

    # ------------------------------------------------------------------------------------ state

    def progress_state(self) -> dict:
        return {
            "step_idx": self.step_idx,
            "draw_cursor": self.draw_cursor,
            "costs": self.costs.as_dict(),
            "train_seconds": self.train_seconds,
            "evals": self.evals,
            "step_log": self.step_log,
            "status": self.status,
            "initial_loss": self.initial_loss,
        }

    def load_progress_state(self, state: dict) -> None:
        self.step_idx, self.draw_cursor = state["step_idx"], state["draw_cursor"]
        c = state["costs"]
        self.costs = Costs(forward=c["forward"], backward=c["backward"], jvp=c["jvp"], tokens=c["tokens"])
        self.train_seconds = state["train_seconds"]
        self.evals, self.step_log = list(state["evals"]), list(state["step_log"])
        self.status, self.initial_loss = state["status"], state["initial_loss"]

    def resume_state(self) -> dict:
        """Everything needed to continue this trial exactly: weights, backend state, progress, RNG."""
        return {
            "model": {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()},
            "backend": self.backend.state_dict(),
            "progress": self.progress_state(),
            "rng": torch.get_rng_state(),
        }

    def load_resume_state(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.backend.load_state_dict(state["backend"])
        self.load_progress_state(state["progress"])
        torch.set_rng_state(state["rng"])

    def save_resume_state(self) -> None:
        """Atomic checkpoint (temporary file, fsync, rename) by rank 0, at every evaluation."""
        if self.checkpoint_path is None or self.global_rank != 0:
            return
        self.checkpoint_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.checkpoint_path.with_name(f".{self.checkpoint_path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            torch.save(self.resume_state(), f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.checkpoint_path)

    def configure_optimizers(self):
        return None  # the backend owns its optimizers
