"""``bench perf``: per-step costs measured in one process, reported as ratios against a baseline
measured in the same run (absolute times depend on the machine; ratios much less)."""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable

import lightning as L
import torch
from torch.profiler import ProfilerActivity, profile

from benchmark.trial.hardware import Hardware
from benchmark.trial.launch import fit
from models.layout import build_backend, model_layout
from models.lightning import BenchModule
from models.transformer import Transformer, lm_loss, model_config
from optimizers import get_backend, make_hyper, registry
from optimizers.gauss_newton.curvature import linearized_gradient
from optimizers.interface import Costs, StepContext, split_batch


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_seconds(fn: Callable[[], object], reps: int, warmup: int = 2, device: torch.device | None = None) -> float:
    device = device or torch.device("cpu")
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


class Setup:
    """A model preset, K random micro-batches and a drawer of fresh ones, on one device."""

    def __init__(self, preset: str = "cpu", k: int = 4, micro_batch: int = 16, seq_len: int = 64,
                 device: str = "cpu", vocab: int | None = None, seed: int = 0):
        self.device = torch.device(device)
        cfg = model_config(preset, max_seq_len=seq_len, **({"vocab_size": vocab} if vocab else {}))
        self.cfg, self.k, self.m, self.T = cfg, k, micro_batch, seq_len
        g = torch.Generator().manual_seed(seed)
        self.batches = [torch.randint(0, cfg.vocab_size, (micro_batch, seq_len + 1), generator=g).to(self.device)
                        for _ in range(k)]
        self.seed = seed

    def model(self) -> Transformer:
        torch.manual_seed(self.seed)
        return Transformer(self.cfg).to(self.device)

    def draw(self, n: int):
        return [self.batches[i % self.k] for i in range(n)]

    def context(self, model) -> StepContext:
        return StepContext(model=model, microbatches=self.batches, draw=self.draw, costs=Costs(), loss_fn=lm_loss)


def peak_bytes(fn: Callable[[], object], device: torch.device) -> float:
    """Most bytes of tensors alive at once while ``fn`` runs: ``torch.cuda.max_memory_allocated`` on a GPU; on
    CPU, the allocations and frees the PyTorch profiler records, replayed in order."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        fn()
        torch.cuda.synchronize(device)
        return float(torch.cuda.max_memory_allocated(device) - base)
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    live = top = 0
    for event in sorted(prof.events(), key=lambda e: e.time_range.start):
        live += event.self_cpu_memory_usage
        top = max(top, live)
    return float(top)


def step_peak(preset: str, name: str, sequences: int, seq_len: int, device: str = "cpu", **hp) -> tuple[float, float]:
    """(peak bytes, seconds of the second step) of building a model of ``preset``'s shape and backend ``name`` and
    taking two outer steps (K = 1) on a micro-batch of ``sequences`` random sequences of ``seq_len`` tokens: the
    weights, the optimizer's state and the step's activations, everything a step holds. Two, because a first step
    creates the optimizer's state after its activations are freed (AdamW's moments): the second holds them
    together, as every step of a run does."""
    setup = Setup(preset, k=1, micro_batch=sequences, seq_len=seq_len, device=device)
    seconds = []

    def run():
        step, _ = backend_stepper(setup, name, **hp)
        for _ in range(2):
            t0 = time.perf_counter()
            step()
            _sync(setup.device)
            seconds.append(time.perf_counter() - t0)

    return peak_bytes(run, setup.device), seconds[-1]


def backend_stepper(setup: Setup, name: str, **hp):
    """(one outer step of backend ``name`` on a fresh model, the passes its last step counted)."""
    model = setup.model()
    cls = get_backend(name)
    backend = build_backend(cls, model, make_hyper(cls, hp), 1000, setup.T)
    last = [Costs()]

    def step():
        ctx = setup.context(model)
        backend.step(ctx)
        last[0] = ctx.costs

    return step, last


def backend_step_seconds(setup: Setup, name: str, reps: int, **hp) -> tuple[float, Costs]:
    """Median seconds of one outer step of backend ``name``, and the passes that step counted."""
    step, last = backend_stepper(setup, name, **hp)
    return median_seconds(step, reps, device=setup.device), last[0]


def bare_adamw_stepper(setup: Setup):
    """The same AdamW step as the backend, written as a plain PyTorch loop."""
    model = setup.model()
    params = list(model.parameters())
    opt = torch.optim.AdamW(params, lr=1e-2, betas=(0.9, 0.95), weight_decay=0.0, foreach=True)

    def step():
        for p in params:
            p.grad = None
        for batch in setup.batches:
            x, y = split_batch(batch)
            (lm_loss(model(x), y) / setup.k).backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()

    return step


def bare_adamw_seconds(setup: Setup, reps: int) -> float:
    return median_seconds(bare_adamw_stepper(setup), reps, device=setup.device)


class _StepTimer(L.Callback):
    def __init__(self, device):
        self.device, self.times, self._t0 = device, [], 0.0

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        _sync(self.device)
        self._t0 = time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        _sync(self.device)
        self.times.append(time.perf_counter() - self._t0)


def harness_adamw_seconds(setup: Setup, steps: int) -> float:
    """One AdamW step through the real harness: a Trainer driving BenchModule (no evaluation steps)."""
    model = setup.model()
    cls = get_backend("adamw")
    backend = build_backend(cls, model, make_hyper(cls, {}), 1000, setup.T)

    class FixedSteps(torch.utils.data.Dataset):
        def __len__(self):
            return steps

        def __getitem__(self, i):
            return {"step": i, "tokens": torch.stack([b.cpu() for b in setup.batches])}

    module = BenchModule(model, backend, setup.k, 1000, draw_microbatch=None)
    timer = _StepTimer(setup.device)
    accelerator = "gpu" if setup.device.type == "cuda" else "cpu"
    fit(module, FixedSteps(), Hardware(accelerator=accelerator), callbacks=[timer])
    return statistics.median(timer.times[2:])


def gn_product_and_gradient(setup: Setup, product: str = "double_backward"):
    """(one GN inner gradient J0ᵀ(g0 + H0 J0 Δ), one loss gradient) on the same batch, as callables."""
    model = setup.model()
    smap = model_layout(model, setup.T).stages
    anchor = {n: p.detach() for n, p in model.named_parameters()}
    delta = {n: 1e-3 * torch.randn_like(p) for n, p in anchor.items()}
    x, y = split_batch(setup.batches[0])
    every = list(range(len(smap)))
    params = list(model.parameters())

    def gn():
        linearized_gradient(smap, anchor, delta, every, [x], y, product=product)

    def grad():
        torch.autograd.grad(lm_loss(model(x), y), params)

    return gn, grad


def gn_product_vs_gradient(setup: Setup, reps: int) -> tuple[float, float]:
    """(seconds of one GN inner gradient, seconds of one loss gradient), same batch."""
    gn, grad = gn_product_and_gradient(setup)
    return median_seconds(gn, reps, device=setup.device), median_seconds(grad, reps, device=setup.device)


def one_line_search_batch(name: str) -> dict:
    """Overrides that give a backend with a line search one fresh micro-batch for it (per-step costs
    comparable across K); none for the others."""
    return {"ls_batches": 1} if "ls_batches" in {f.name for f in dataclasses.fields(get_backend(name).Hyper)} else {}


def report(preset: str = "cpu", k: int = 4, reps: int = 10, device: str = "cpu", backends=None) -> list[dict]:
    """Every ratio the issues ask for, measured in this one process."""
    setup = Setup(preset, k=k, device=device)
    rows = []
    bare = bare_adamw_seconds(setup, reps)
    harness = harness_adamw_seconds(setup, reps + 3)
    rows.append({"measure": "AdamW step: harness / bare PyTorch loop", "ratio": harness / bare,
                 "seconds": harness, "baseline_seconds": bare})
    gn, grad = gn_product_vs_gradient(setup, reps)
    rows.append({"measure": "GN inner gradient J0ᵀ(g0+H0J0Δ) / loss gradient", "ratio": gn / grad,
                 "seconds": gn, "baseline_seconds": grad})
    adamw, _ = backend_step_seconds(setup, "adamw", reps)
    steps = {}
    for name in backends or sorted(registry()):
        hp = one_line_search_batch(name)
        seconds, costs = (adamw, None) if name == "adamw" else backend_step_seconds(setup, name, max(3, reps // 2), **hp)
        steps[name] = seconds
        rows.append({"measure": f"{name} step / AdamW step (K={k})", "ratio": seconds / adamw, "seconds": seconds,
                     "baseline_seconds": adamw,
                     "fwd_equiv_per_step": None if costs is None else costs.forward_equivalents})
    if "gn" in steps and "layerwise-gn" in steps:
        rows.append({"measure": "layerwise GN step / full GN step", "ratio": steps["layerwise-gn"] / steps["gn"],
                     "seconds": steps["layerwise-gn"], "baseline_seconds": steps["gn"]})
    return rows
