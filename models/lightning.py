"""The LightningModule that hosts a transformer and an optimizer backend for one trial.

Manual optimization: the backend owns its optimizers and updates the parameters itself. Each batch is
one outer step (this process's rows of the step's K micro-batches); the module builds the step context,
times the step, counts its passes and tokens and logs it. What the harness does during training
(evaluation grid and targets, divergence, checkpoints, the record) lives in its callbacks.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable

import lightning as L
import torch
import torchmetrics
from torch.func import functional_call

from models.transformer import lm_loss
from optimizers.distributed import Reducer, process_rank
from optimizers.interface import Backend, Costs, LossFn, StepContext, split_batch


class BenchModule(L.LightningModule):
    def __init__(
        self,
        model: torch.nn.Module,
        backend: Backend,
        k: int,
        total_steps: int,
        draw_microbatch: Callable[[int], torch.Tensor] | None,
        make_backend: Callable[[torch.nn.Module], Backend] | None = None,
        loss_fn: LossFn = lm_loss,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.model, self.backend, self.loss_fn = model, backend, loss_fn
        # Where the backend was built: a trial (fresh or resumed) always rebuilds it on the training device,
        # so both take the same kernels (e.g. fused AdamW on CUDA) and resume exactly.
        self.backend_device = next(model.parameters()).device
        self.make_backend = make_backend
        self.k, self.total_steps = k, total_steps
        self.draw_microbatch = draw_microbatch  # global index -> (m, T+1), for the backend's fresh draws
        self.val_loss = torchmetrics.MeanMetric(nan_strategy="disable")  # a NaN loss must show, not vanish
        self.reducer = Reducer()
        # Progress: with the weights, the backend and the RNG, everything a resumed run needs.
        self.step_idx = 0
        self.draw_cursor = 0
        self.costs = Costs()
        self.train_seconds = 0.0
        self.step_log: list[dict] = []
        self.run_device = torch.device("cpu")
        self.compile_model = False
        self.compiled = False
        self.budget: int | None = None  # where the backend's decaying schedule ends, when the host sets it

    def set_budget(self, budget: int) -> None:
        """Lay the backend's decaying schedule out over ``budget`` steps (a cooldown branch: its own budget; the
        constant phase before its branches: one so far away that no cooldown comes), kept across rebuilds."""
        self.budget = self.backend.budget = budget

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
        if self.compile_model and not self.compiled and self.backend.supports_compile:
            # In place (nn.Module.compile), so the backend's references stay valid. Gauss-Newton backends
            # differentiate through torch.func transforms and keep the eager model.
            self.model.compile()
            self.compiled = True
        # The backend was built (and possibly restored) beside the model on the CPU; once the Trainer has
        # moved the model to its device, rebuild it there from its own state so that every tensor it
        # holds (inner iterates, optimizer states) lives on that device too.
        if self.backend_device != self.device and self.make_backend is not None:
            state = self.backend.state_dict()
            self.backend = self.make_backend(self.model)
            self.backend.load_state_dict(state)
            if self.budget is not None:
                self.backend.budget = self.budget
            self.backend_device = self.device

    def _draw(self, n: int) -> list[torch.Tensor]:
        """Fresh micro-batches for the backend, the same on every rank (this rank's rows of each)."""
        rank, world = process_rank()
        out = [self.draw_microbatch(self.draw_cursor + j)[rank::world].to(self.device) for j in range(n)]
        self.draw_cursor += n
        return out

    def training_step(self, batch: dict, batch_idx: int) -> None:
        step = int(batch["step"])
        if step != self.step_idx:
            raise RuntimeError(f"data step {step} != module step {self.step_idx}")
        step_costs = Costs()
        ctx = StepContext(model=self.model, microbatches=list(batch["tokens"].unbind(0)), draw=self._draw,
                          costs=step_costs, loss_fn=self.loss_fn, reducer=self.reducer)
        draws_before = self.draw_cursor
        self.model.train()
        self._sync()
        t0 = time.perf_counter()
        loss = self.backend.step(ctx)
        self._sync()
        seconds = time.perf_counter() - t0
        # Tokens seen: the step's K micro-batches (all ranks) plus the fresh ones the backend drew. Each
        # process runs every pass over 1/world of the rows, so pass counts are global in whole micro-batches.
        m_global, T = batch["tokens"].shape[1] * self.reducer.world_size, batch["tokens"].shape[2] - 1
        step_costs.add(tokens=(self.k + self.draw_cursor - draws_before) * m_global * T)
        self.costs += step_costs
        self.train_seconds += seconds
        self.step_idx += 1
        self.step_log.append({"step": self.step_idx, "train_loss": loss, "seconds": seconds,
                              **step_costs.as_dict(), **self.backend.diagnostics()})

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def evaluation_parameters(self) -> dict[str, torch.Tensor]:
        """The weights evaluated now: the backend's (e.g. an EMA) or the model's own."""
        return self.backend.eval_parameters() or dict(self.model.named_parameters())

    @torch.no_grad()
    def mean_loss(self, batches: list[torch.Tensor], params: dict[str, torch.Tensor] | None = None) -> float:
        """Mean token loss over ``batches`` (spread over the ranks) at ``params`` (by default the backend's
        evaluation parameters, else the model's)."""
        was_training = self.model.training
        self.model.eval()
        params = params if params is not None else self.backend.eval_parameters()
        self.val_loss.reset()
        rank, world = process_rank()
        for batch in batches[rank::world]:
            x, y = split_batch(batch.to(self.device))
            logits = functional_call(self.model, params, (x,)) if params is not None else self.model(x)
            loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1).float(), y.flatten(), reduction="sum")
            self.val_loss.update(loss / y.numel(), weight=y.numel())
        val = float(self.val_loss.compute())
        self.model.train(was_training)
        return val

    def progress_state(self) -> dict:
        return {"step_idx": self.step_idx, "draw_cursor": self.draw_cursor, "costs": self.costs.as_dict(),
                "train_seconds": self.train_seconds, "step_log": self.step_log}

    def load_progress_state(self, state: dict) -> None:
        self.step_idx, self.draw_cursor = state["step_idx"], state["draw_cursor"]
        self.costs = Costs.from_dict(state["costs"])
        self.train_seconds = state["train_seconds"]
        self.step_log = list(state["step_log"])

    def configure_optimizers(self):
        return None  # the backend owns its optimizers
