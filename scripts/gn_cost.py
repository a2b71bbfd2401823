"""Where a Gauss-Newton step's time goes on this machine, against first-order baselines timed in the same run.

    python scripts/gn_cost.py [--preset cpu] [--micro-batch 16] [--seq-len 64] [--k 16] [--reps 30]

1. The inner gradient J0ᵀ(g0 + H0 J0Δ) with each trunk product (``curvature.TRUNK_PRODUCTS``) against a loss
   gradient on the same micro-batch, split into the trunk (forward and tangent), the head (by hand, in chunks) and
   the pull-back.
2. One GN outer step (K inner steps, a line search on one fresh micro-batch) against an AdamW step, split into the
   K inner gradients, the inner optimizer's K steps (Muon's Newton-Schulz iterations on the hidden matrices), the
   line search and the rest.

Medians over ``--reps``; one thread, so that the ratios do not depend on how busy the other core is.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import optimizers.gauss_newton.backends as backends  # noqa: E402
import optimizers.gauss_newton.curvature as curvature  # noqa: E402
from benchmark.trial.perf import Setup, backend_stepper, gn_product_and_gradient, median_seconds  # noqa: E402


class Timer:
    """Seconds spent in wrapped functions, by part, over one call of something that calls them."""

    def __init__(self) -> None:
        self.parts: dict[str, list[float]] = {}

    def wrap(self, part: str, fn):
        def timed(*args, **kwargs):
            t = time.perf_counter()
            out = fn(*args, **kwargs)
            self.parts.setdefault(part, []).append(time.perf_counter() - t)
            return out
        return timed

    def run(self, fn) -> tuple[float, dict[str, float]]:
        self.parts = {}
        t = time.perf_counter()
        fn()
        return time.perf_counter() - t, {k: sum(v) for k, v in self.parts.items()}


def median_split(timer: Timer, fn, reps: int) -> tuple[float, dict[str, float]]:
    """The run of median total time among ``reps`` (after one warm-up), with its parts."""
    fn()
    runs = sorted((timer.run(fn) for _ in range(reps)), key=lambda r: r[0])
    return runs[len(runs) // 2]


def inner_gradients(setup: Setup, reps: int) -> None:
    timer = Timer()
    trunk, head = curvature._trunk, curvature.head_terms

    def timed_trunk(*args, **kwargs):
        h0, dh, pull_back = timer.wrap("trunk", trunk)(*args, **kwargs)
        return h0, dh, timer.wrap("pull-back", pull_back)

    curvature._trunk, curvature.head_terms = timed_trunk, timer.wrap("head", head)
    try:
        _, grad = gn_product_and_gradient(setup)
        g = median_seconds(grad, reps)
        print(f"loss gradient {g * 1e3:.2f} ms; GN inner gradient in loss gradients, by product:")
        for product in curvature.TRUNK_PRODUCTS:
            gn, _ = gn_product_and_gradient(setup, product)
            total, parts = median_split(timer, gn, reps)
            split = "  ".join(f"{k} {v / g:.2f}" for k, v in parts.items())
            print(f"  {product:16s} {total / g:5.2f}x   ({split})")
    finally:
        curvature._trunk, curvature.head_terms = trunk, head


def outer_step(setup: Setup, reps: int) -> None:
    timer = Timer()
    grads, search, build = backends.group_gradients, backends.line_search, backends.build_inner_optimizers

    def timed_build(*args, **kwargs):
        optimizers = build(*args, **kwargs)
        for o in optimizers:
            o.step = timer.wrap("inner optimizer", o.step)
        return optimizers

    backends.group_gradients = timer.wrap("inner gradients", grads)
    backends.line_search = timer.wrap("line search", search)
    backends.build_inner_optimizers = timed_build
    try:
        adamw, _ = backend_stepper(setup, "adamw")
        a = median_seconds(adamw, reps)
        step, _ = backend_stepper(setup, "gn", ls_batches=1)
        total, parts = median_split(timer, step, reps)
        parts["rest"] = total - sum(parts.values())
        print(f"AdamW step {a * 1e3:.1f} ms; GN step {total / a:.2f}x, in AdamW steps:")
        for k, v in parts.items():
            print(f"  {k:16s} {v / a:5.2f}   ({v / total:.0%})")
    finally:
        backends.group_gradients, backends.line_search, backends.build_inner_optimizers = grads, search, build


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--micro-batch", type=int, default=16)
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--k", type=int, default=16, help="micro-batches of the outer step")
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--no-step", action="store_true", help="the inner gradients only")
    args = parser.parse_args()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        print(f"{args.preset}, micro-batch {args.micro_batch} x {args.seq_len} tokens, K = {args.k}")
        inner_gradients(Setup(args.preset, k=1, micro_batch=args.micro_batch, seq_len=args.seq_len), args.reps)
        if not args.no_step:
            outer_step(Setup(args.preset, k=args.k, micro_batch=args.micro_batch, seq_len=args.seq_len),
                       max(3, args.reps // 4))
    finally:
        torch.set_num_threads(threads)


if __name__ == "__main__":
    main()
