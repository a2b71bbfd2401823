"""The prepared GPU check (run by ``scripts/gpu_check.sh``): per-step time and peak memory of every backend at
a paper-scale preset, AdamW's model-FLOPs utilisation, and the bf16-vs-fp32 agreement of the GN product.
Prints one table; each figure is measured in this one process."""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch

from benchmark.trial.perf import (
    Setup,
    backend_step_seconds,
    bare_adamw_seconds,
    harness_adamw_seconds,
    median_seconds,
    one_line_search_batch,
)
from models.layout import model_layout
from models.transformer import lm_loss
from optimizers.gauss_newton.curvature import linearized_gradient
from optimizers.interface import split_batch

PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0}  # dense bf16, vendor datasheet


class Recorder:
    """One table row per measure, with the peak GPU memory since the previous row."""

    def __init__(self, device: torch.device) -> None:
        self.device, self.rows = device, []

    def __call__(self, label: str, seconds: float, extra: str = "") -> None:
        peak = torch.cuda.max_memory_allocated(self.device) / 2**30
        self.rows.append({"measure": label, "seconds": seconds, "peak_gib": peak, "note": extra})
        print(f"{label:48} {seconds * 1e3:10.1f} ms  peak {peak:6.1f} GiB  {extra}", flush=True)
        torch.cuda.reset_peak_memory_stats(self.device)
        torch.cuda.empty_cache()


def adamw_and_backends(setup: Setup, record: Recorder, backends: list[str], reps: int, mfu) -> None:
    """The bare AdamW loop (fp32 and bf16), the harness around it, then one step of every backend."""
    bare = bare_adamw_seconds(setup, reps)
    record("bare AdamW step (fp32, TF32 matmuls)", bare, f"MFU {mfu(bare):.1%} of bf16 peak")
    with torch.autocast("cuda", dtype=torch.bfloat16):
        bf = bare_adamw_seconds(setup, reps)
    record("bare AdamW step (bf16 autocast)", bf, f"MFU {mfu(bf):.1%}")
    harness = harness_adamw_seconds(setup, reps + 3)
    record("AdamW step through the harness (fp32)", harness, f"harness/bare {harness / bare:.2f}")
    adamw = None
    for backend in backends:
        t0 = time.time()
        try:
            seconds, costs = backend_step_seconds(setup, backend, reps, **one_line_search_batch(backend))
        except torch.OutOfMemoryError:
            record(f"{backend} step", float("nan"), "out of memory")
            continue
        adamw = seconds if backend == "adamw" else adamw
        ratio = f"x{seconds / adamw:.2f} AdamW" if adamw else ""
        record(f"{backend} step (fp32)", seconds,
               f"{ratio} fwd-equiv {costs.forward_equivalents:.1f} ({time.time() - t0:.0f}s)")


def gn_product_precision(setup: Setup, record: Recorder, reps: int) -> None:
    """The GN inner gradient on one micro-batch in fp32 and under bf16 autocast, against the gradient."""
    model = setup.model()
    smap = model_layout(model, setup.T).stages
    anchor = {n: p.detach() for n, p in model.named_parameters()}
    torch.manual_seed(0)
    delta = {n: 1e-3 * torch.randn_like(p) for n, p in anchor.items()}
    x, y = split_batch(setup.batches[0])
    every = list(range(len(smap)))
    ref = linearized_gradient(smap, anchor, delta, every, [x], y)
    t32 = median_seconds(lambda: linearized_gradient(smap, anchor, delta, every, [x], y), reps, device=setup.device)
    record("GN inner gradient (fp32)", t32)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        low = linearized_gradient(smap, anchor, delta, every, [x], y)
        t16 = median_seconds(lambda: linearized_gradient(smap, anchor, delta, every, [x], y), reps, device=setup.device)
    num = sum(((low.grads[n].float() - ref.grads[n]) ** 2).sum() for n in ref.grads) ** 0.5
    den = sum((ref.grads[n] ** 2).sum() for n in ref.grads) ** 0.5
    record("GN inner gradient (bf16 autocast)", t16, f"relative error vs fp32 {float(num / den):.2e}")
    params = list(model.parameters())
    tg = median_seconds(lambda: torch.autograd.grad(lm_loss(model(x), y), params), reps, device=setup.device)
    record("loss gradient (fp32)", tg, f"GN product / gradient {t32 / tg:.2f}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="45m")
    ap.add_argument("--k", type=int, default=2)
    ap.add_argument("--micro-batch", type=int, default=32)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--backends", default="adamw,muon,soap,gn,layerwise-gn")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    if not torch.cuda.is_available():
        print("no CUDA device", file=sys.stderr)
        return 1
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    setup = Setup(args.preset, k=args.k, micro_batch=args.micro_batch, seq_len=1024, device="cuda")
    name = torch.cuda.get_device_name(setup.device)
    n_params, tokens = setup.model().num_parameters(), args.k * args.micro_batch * 1024
    print(f"{name}: preset {args.preset} ({n_params / 1e6:.1f}M params), K={args.k}, "
          f"micro-batch {args.micro_batch}x1024, {tokens} tokens/step, torch {torch.__version__}", flush=True)
    peak_tflops = PEAK_TFLOPS.get(name.split()[1] if " " in name else "", 989.0)
    record = Recorder(setup.device)
    adamw_and_backends(setup, record, args.backends.split(","), args.reps,
                       lambda seconds: 6 * n_params * tokens / seconds / 1e12 / peak_tflops)
    gn_product_precision(setup, record, args.reps)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": name, "preset": args.preset, "k": args.k, "rows": record.rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
