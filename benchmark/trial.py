"""One trial = (workload, backend with its hyperparameters, K, seed), run by a Lightning Trainer."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import platform
import subprocess
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.strategies import DDPStrategy

from benchmark import __version__
from benchmark.data import MicroBatchStream, PackedSequences, PreparedData, cache_root, validation_batches
from benchmark.metrics import steps_to_target
from benchmark.ranks import TrialStart, is_worker_process
from benchmark.store import ResultsStore
from benchmark.workloads import Workload
from models.lightning import BenchModule, StepDataset
from models.transformer import Transformer
from optimizers import get_backend, make_hyper

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class Hardware:
    """Where and how trials run. ``precision`` and ``compile`` change the numbers, so they enter the run
    identity (see ``Trial.numerics``); the rest does not."""

    accelerator: str = "auto"
    devices: int = 1
    num_nodes: int = 1
    precision: str = "32-true"  # Lightning precision: "32-true" or "bf16-mixed"
    tf32: bool = True  # TF32 tensor-core matmuls for fp32 work on GPUs
    compile: bool = False  # torch.compile the model (first-order backends; GN keeps eager for torch.func)

    @property
    def multi_process(self) -> bool:
        return self.devices > 1 or self.num_nodes > 1

    def numerics(self) -> str:
        parts = [] if self.precision == "32-true" else [self.precision]
        return "+".join([*parts, "compile"] if self.compile else parts)


# Data streams: trials and the warm start read disjoint permutations; line searches have their own.
TRAIN_STREAM, DRAW_STREAM, WARM_STREAM = 0, 1, 2


@dataclass(frozen=True)
class Trial:
    suite: str
    workload: Workload
    optimizer: str
    hparams: tuple[tuple[str, Any], ...]  # overrides of the backend's defaults, sorted by name
    k: int
    seed: int
    role: str = "run"  # "tune" or "seed" in the iteration-complexity suite; not part of the identity
    corpus: str = ""  # corpus name and content fingerprint: results on different text never collide
    numerics: str = ""  # non-default precision / compilation (Hardware.numerics)

    @property
    def run_id(self) -> str:
        parts = [self.workload.key(), self.corpus, self.optimizer, list(self.hparams), self.k, self.seed]
        ident = json.dumps([*parts, self.numerics] if self.numerics else parts)
        digest = hashlib.sha256(ident.encode()).hexdigest()[:10]
        return f"{self.workload.name}-{self.optimizer}-k{self.k}-s{self.seed}-{digest}"

    def hyper(self):
        return make_hyper(get_backend(self.optimizer), dict(self.hparams))

    def describe(self) -> str:
        hp = ",".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in self.hparams)
        return f"{self.optimizer}[{hp or 'defaults'}] K={self.k} seed={self.seed}"


def code_version() -> str:
    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, timeout=5
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha, dirty = "", ""
    return f"{__version__}+{sha}{'.dirty' if dirty else ''}" if sha else __version__


def _version(module: str) -> str | None:
    try:
        return __import__(module).__version__
    except ImportError:
        return None


def environment(device: torch.device) -> dict:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    return {
        "code_version": code_version(),
        "python": platform.python_version(),
        "libraries": {
            "torch": torch.__version__,
            "lightning": L.__version__,
            "datasets": _version("datasets"),
            "tokenizers": _version("tokenizers"),
            "numpy": _version("numpy"),
        },
        "device": {"type": device.type, "name": name, "count": torch.cuda.device_count() if device.type == "cuda" else os.cpu_count()},
        "host": platform.node(),
    }


class ExplicitSyncDDP(DDPStrategy):
    """Lightning's DDP (process launch, process group, rank bookkeeping, NCCL or gloo) without the
    DistributedDataParallel wrapper: every backend reduces its own batch-dependent products through
    ``optimizers.base.Reducer`` (gradients once per step for first-order backends; every inner gradient
    and line-search loss for Gauss-Newton), which DDP's one-backward-per-forward hooks cannot express."""

    def configure_ddp(self) -> None:
        pass  # no wrapper: the LightningModule runs as is on every rank

    def teardown(self) -> None:
        super().teardown()
        # Spawned or forked ranks exit right after their fit. Leaving the process group to the interpreter's
        # exit let gloo's threads abort a rank once in CI ("terminate called without an active exception"):
        # close it here. Ranks started as programs keep theirs for the sweep's next trial.
        if self._start_method != "popen" and torch.distributed.is_initialized():
            torch.distributed.barrier()
            torch.distributed.destroy_process_group()


def ddp_start_method() -> str:
    """``popen`` (Lightning's default: re-runs the command per rank, for torchrun/SLURM-style use);
    tests set OPTBENCH_DDP_START=spawn (pytest cannot be re-run as a child)."""
    return os.environ.get("OPTBENCH_DDP_START", "popen")


def _trainer(steps: int, hw: Hardware, callbacks=()) -> L.Trainer:
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
        logger=False,
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


def _fit(module: BenchModule, dataset: StepDataset, hw: Hardware, callbacks=()) -> None:
    quiet_lightning()
    loader = torch.utils.data.DataLoader(dataset, batch_size=None, shuffle=False, num_workers=0)
    with warnings.catch_warnings():
        for pattern in _LIGHTNING_NOISE:
            warnings.filterwarnings("ignore", pattern)
        _trainer(len(dataset), hw, callbacks).fit(module, train_dataloaders=loader)


def warm_start_state(workload: Workload, data: PreparedData, seed: int, hw: Hardware | None = None) -> dict | None:
    """The workload's shared AdamW warm start for ``seed``: trained once, cached on disk."""
    if workload.warm_start_steps <= 0:
        return None
    key = hashlib.sha256(json.dumps([workload.key(), data.info.get("cache_key"), seed]).encode()).hexdigest()[:12]
    path = cache_root() / "warmstart" / f"{workload.name}-s{seed}-{key}.pt"
    if path.exists():
        return torch.load(path, map_location="cpu", weights_only=True)
    trial = Trial(
        "warm-start", workload, "adamw", (("lr", workload.warm_start_lr), ("schedule", "constant")),
        workload.warm_start_k, seed, corpus=data.corpus.key(),
    )
    module, _ = _build(trial, data, warm=None, total_steps=workload.warm_start_steps, eval_grid=[], targets=())
    dataset = StepDataset(
        MicroBatchStream(PackedSequences(data.train_path, workload.seq_len, data.vocab_size),
                         workload.micro_batch, seed, WARM_STREAM),
        trial.k, 0, workload.warm_start_steps,
    )
    _fit(module, dataset, Hardware(accelerator=(hw or Hardware()).accelerator))  # one device, fp32
    state = {k: v.detach().cpu().clone() for k, v in module.model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return state


def _build(trial: Trial, data: PreparedData, warm: dict | None, total_steps: int, eval_grid, targets, on_step=None,
           checkpoint_path=None):
    w = trial.workload
    L.seed_everything(trial.seed, verbose=False)
    model = Transformer(w.model_config())
    if warm is not None:
        model.load_state_dict(warm)
    backend_cls = get_backend(trial.optimizer)
    hp = make_hyper(backend_cls, dict(trial.hparams))
    make_backend = functools.partial(backend_cls, hp=hp, total_steps=total_steps)
    backend = make_backend(model)
    val = PackedSequences(data.validation_path, w.seq_len, data.vocab_size)
    train = PackedSequences(data.train_path, w.seq_len, data.vocab_size)
    module = BenchModule(
        model=model,
        backend=backend,
        k=trial.k,
        total_steps=total_steps,
        eval_grid=eval_grid,
        targets=targets,
        val_batches=validation_batches(val, w.val_tokens, w.micro_batch),
        draw_stream=MicroBatchStream(train, w.micro_batch, trial.seed, DRAW_STREAM),
        divergence_factor=w.divergence_factor,
        on_step=on_step,
        checkpoint_path=checkpoint_path,
        make_backend=make_backend,
    )
    return module, hp


class RecordWriter(L.Callback):
    """Writes the trial's record at the end of fit, on rank 0, inside whichever process ran the fit
    (spawned DDP workers return nothing else to the parent)."""

    def __init__(self, trial: Trial, hp, data: PreparedData, store: ResultsStore, started: float, ckpt: Path,
                 hw: Hardware):
        self.trial, self.hp, self.data, self.store, self.started, self.ckpt = trial, hp, data, store, started, ckpt
        self.hw = hw

    def finish(self, module: BenchModule) -> dict:
        if module.status == "running":
            module.status = "budget"  # ran its whole budget without reaching the last target
        record = make_record(self.trial, self.hp, module, self.data, self.started, self.hw)
        self.store.write(record)
        self.ckpt.unlink(missing_ok=True)
        return record

    def on_fit_end(self, trainer, module) -> None:
        if trainer.global_rank == 0:
            self.finish(module)


def trial_start(trial: Trial, data: PreparedData, store: ResultsStore, hw: Hardware) -> TrialStart:
    """Where ``trial`` starts: its checkpoint under the store's work folder if an earlier run was
    interrupted, else the workload's warm start (or nothing: a fresh initialisation)."""
    ckpt = store.checkpoint_path(trial.run_id)
    if ckpt.exists():
        return TrialStart(resume=torch.load(ckpt, map_location="cpu", weights_only=False))
    return TrialStart(warm=warm_start_state(trial.workload, data, trial.seed, hw))


def run_trial(
    trial: Trial,
    data: PreparedData,
    store: ResultsStore,
    hw: Hardware | None = None,
    on_step=None,
    start: TrialStart | None = None,
) -> dict | None:
    """Train one trial to its last target or its budget and write its record; returns the record (None
    in the other ranks of a multi-process run, which write nothing).

    The trial checkpoints at every evaluation under the store's work folder; an interrupted trial
    resumes from there and produces the same curve as an uninterrupted one (every micro-batch is a
    function of the seed and the step, and the checkpoint holds weights, backend state, the line-search
    data cursor and the RNG). ``start`` (default: ``trial_start``) is how the other ranks of a launched
    multi-process run get rank 0's warm start or checkpoint.
    """
    hw = hw or Hardware()
    if hw.numerics() != trial.numerics:
        raise ValueError(f"trial planned for numerics {trial.numerics!r} but run with {hw.numerics()!r}")
    torch.backends.cuda.matmul.allow_tf32 = hw.tf32
    torch.backends.cudnn.allow_tf32 = hw.tf32
    w = trial.workload
    start = start or trial_start(trial, data, store, hw)
    ckpt = store.checkpoint_path(trial.run_id)
    module, hp = _build(trial, data, start.warm, w.max_steps, w.eval_grid(), w.targets,
                        None if hw.multi_process and ddp_start_method() != "popen" else on_step, ckpt)
    module.compile_model = hw.compile
    writer = RecordWriter(trial, hp, data, store, time.time(), ckpt, hw)
    if start.resume is not None:
        module.load_resume_state(start.resume)
        log.info("%s: resuming at step %d", trial.run_id, module.step_idx)
    if module.status != "running" or module.step_idx >= w.max_steps:
        # killed after its last evaluation but before its record: nothing left to train
        return None if is_worker_process() else writer.finish(module)
    train = PackedSequences(data.train_path, w.seq_len, data.vocab_size)
    stream = MicroBatchStream(train, w.micro_batch, trial.seed, TRAIN_STREAM)
    _fit(module, StepDataset(stream, trial.k, module.step_idx, w.max_steps), hw, [writer])
    if is_worker_process():
        return None
    return json.loads(store.path(trial.run_id).read_text())


def make_record(trial: Trial, hp, module: BenchModule, data: PreparedData, started: float, hw: Hardware) -> dict:
    w = trial.workload
    steps = [e["step"] for e in module.evals]
    losses = [e["val_loss"] for e in module.evals]
    # A diverged run keeps the targets it reached before diverging; the others are censored.
    reached = {f"{t:g}": steps_to_target(steps, losses, t) for t in w.targets}
    run = {
        "run_id": trial.run_id,
        "suite": trial.suite,
        "role": trial.role,
        "workload": w.name,
        "workload_version": w.version,
        "workload_key": w.key(),
        "corpus_key": trial.corpus,
        "numerics": trial.numerics,
        "optimizer": trial.optimizer,
        "hparams": asdict(hp),
        "hparam_overrides": dict(trial.hparams),
        "lr": getattr(hp, "lr", None),
        "k": trial.k,
        "tokens_per_step": w.tokens_per_step(trial.k),
        "seed": trial.seed,
        "status": module.status,
        "steps_run": module.step_idx,
        "final_val_loss": losses[-1] if losses else None,
        "best_val_loss": min(losses) if losses else None,
        "steps_to_target": reached,
        "costs": module.costs.as_dict(),
        "train_seconds": module.train_seconds,
        "seconds_per_step": module.train_seconds / max(1, module.step_idx),
        "peak_memory_mib": max((e["peak_memory_mib"] for e in module.evals), default=None),
        "started_at": started,
        "finished_at": time.time(),
        "workload_config": w.to_dict(),
        "model_config": w.model_config().to_dict(),
        "num_parameters": module.model.num_parameters(),
        "hardware": asdict(hw) | {"compiled": module.compiled},
        "corpus": data.describe(),
        **environment(module.run_device),
    }
    return {"run": run, "evals": module.evals, "steps": module.step_log}
