"""Launching: the Lightning Trainer a fit runs under, its DDP strategy, and how a process knows its
place among the ranks of a run."""

from __future__ import annotations

import logging
import os
import signal
import warnings

import lightning as L
import torch
import torch.distributed as dist
from lightning.pytorch.strategies import DDPStrategy

from benchmark.trial.hardware import Hardware

# Set by launchers in the ranks they start: torchrun (RANK, GROUP_RANK, LOCAL_RANK), SLURM (SLURM_PROCID),
# Lightning's launcher and a by-hand launch per node (NODE_RANK, LOCAL_RANK). All are zero in the first rank.
RANK_VARIABLES = ("RANK", "SLURM_PROCID", "GROUP_RANK", "NODE_RANK", "LOCAL_RANK")


def is_worker_process() -> bool:
    """True in every rank but the first of a multi-process run launched as separate programs."""
    return any(int(os.environ.get(var) or 0) > 0 for var in RANK_VARIABLES)


def started_by_launcher(hw: Hardware) -> bool:
    """True where the other ranks run already (torchrun, SLURM, one command per node) and wait for this
    one; False where this process launches them itself (Lightning's launcher, one node)."""
    return hw.num_nodes > 1 or any(var in os.environ for var in RANK_VARIABLES)


def ddp_start_method() -> str:
    """``popen`` (Lightning's default: re-runs the command per rank, for torchrun/SLURM-style use);
    tests set OPTBENCH_DDP_START=spawn (pytest cannot be re-run as a child)."""
    return os.environ.get("OPTBENCH_DDP_START", "popen")


def check_same_weights(module: torch.nn.Module) -> None:
    """Every rank holds rank 0's weights, or every rank raises (what DDP's wrapper would have ensured)."""
    with torch.no_grad():
        params = [p.detach().double() for p in module.parameters()]
        mine = torch.stack([sum(p.sum() for p in params), sum(p.square().sum() for p in params)])
    rank0 = mine.clone()
    dist.broadcast(rank0, src=0)
    differ = (mine != rank0).any().to(torch.int32)
    dist.all_reduce(differ, op=dist.ReduceOp.MAX)
    if differ.item():
        raise RuntimeError("the processes of this trial start from different weights")


class ExplicitSyncDDP(DDPStrategy):
    """Lightning's DDP (process launch, process group, rank bookkeeping, NCCL or gloo) without the
    DistributedDataParallel wrapper: every backend reduces its own batch-dependent products through
    ``optimizers.distributed.Reducer`` (gradients once per step for first-order backends; every inner
    gradient and line-search loss for Gauss-Newton), which DDP's one-backward-per-forward hooks cannot
    express."""

    def configure_ddp(self) -> None:
        # No wrapper: the LightningModule runs as is on every rank. Nothing broadcasts the weights, so
        # check that every rank starts from rank 0's.
        check_same_weights(self.lightning_module)

    def teardown(self) -> None:
        super().teardown()
        # Spawned or forked ranks exit right after their fit. Leaving the process group to the interpreter's
        # exit let gloo's threads abort a rank once in CI ("terminate called without an active exception"):
        # close it here. Ranks started as programs keep theirs for the sweep's next trial.
        if self._start_method != "popen" and dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()


def trainer(steps: int, hw: Hardware, callbacks=(), logger=False) -> L.Trainer:
    strategy = ExplicitSyncDDP(start_method=ddp_start_method()) if hw.multi_process else "auto"
    return L.Trainer(
        accelerator=hw.accelerator,
        devices=hw.devices,
        num_nodes=hw.num_nodes,
        strategy=strategy,
        precision=hw.precision,
        max_epochs=1,
        max_steps=-1,
        limit_train_batches=steps,
        logger=logger,
        log_every_n_steps=1,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        use_distributed_sampler=False,
        callbacks=list(callbacks),
    )


_LIGHTNING_NOISE = (
    ".*does not have many workers.*",
    ".*GPU available but not used.*",
    ".*configure_optimizers.* returned `None`.*",
    ".*LeafSpec.*",
)


def quiet_lightning() -> None:
    """Lightning's banners (devices, tips, "fit stopped") would drown the benchmark's own progress."""
    for name in ("lightning.pytorch", "lightning.fabric", "lightning.pytorch.utilities.rank_zero"):
        logging.getLogger(name).setLevel(logging.WARNING)


class _Interrupt(L.Callback):
    """Notes a Ctrl-C inside the fit, which Lightning turns into ``sys.exit(1)`` after its shutdown."""

    def __init__(self) -> None:
        self.seen = False

    def on_exception(self, trainer, module, exception: BaseException) -> None:
        self.seen |= isinstance(exception, KeyboardInterrupt)


def fit(module: L.LightningModule, dataset: torch.utils.data.Dataset, hw: Hardware, callbacks=(),
        logger=False) -> None:
    """Train ``module`` over ``dataset`` (one item per outer step) under ``hw``. A Ctrl-C stays a
    KeyboardInterrupt (Lightning would exit with status 1 and ignore further Ctrl-Cs)."""
    quiet_lightning()
    loader = torch.utils.data.DataLoader(dataset, batch_size=None, shuffle=False, num_workers=0)
    interrupt = _Interrupt()
    with warnings.catch_warnings():
        for pattern in _LIGHTNING_NOISE:
            warnings.filterwarnings("ignore", pattern)
        try:
            trainer(len(dataset), hw, [*callbacks, interrupt], logger).fit(module, train_dataloaders=loader)
        except SystemExit:
            if not interrupt.seen:
                raise
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt from None
