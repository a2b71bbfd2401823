"""Peak memory of one real step of AdamW, GN and layerwise GN at a model preset's shape, on this machine's CPU
(issue 26): measured at a few micro-batch sizes m (sequences of --seq-len tokens), fitted as
memory = fixed + per-sequence x m, extrapolated to --to sequences, and set beside the dry run's memory model
(``benchmark.sweep.estimate.memory_bytes``) at every m measured. With ``sub_batch`` s set, measure at m >= s:
memory then grows with m only by what is not differentiated at once (the fit's slope).

    python scripts/step_memory.py --preset 150m --sequences 1,2 --optimizers adamw,gn,layerwise-gn
    python scripts/step_memory.py --preset 150m --sequences 1,2 --optimizers gn --set sub_batch=1

Peak memory is replayed from the PyTorch profiler's allocations (``benchmark.trial.perf.peak_bytes``): the
weights, the optimizer's state and the step's activations, everything a step holds, over two steps at K = 1 (the
second holds the state the first created beside its activations); a GN step's line search reads one micro-batch. Prints a table, and with --json a file of every figure."""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from benchmark.sweep.estimate import memory_bytes
from benchmark.sweep.settings import parse_settings
from benchmark.trial.perf import step_peak
from models.transformer import model_config
from optimizers import get_backend, make_hyper

GIB = 2**30


def fit(points: dict[int, float]) -> tuple[float, float]:
    """(fixed, per sequence) of the least-squares line through (m, bytes)."""
    ms = sorted(points)
    if len(ms) == 1:
        return points[ms[0]], 0.0
    slope, intercept = np.polyfit(ms, [points[m] for m in ms], 1)
    return float(intercept), float(slope)


def measure(preset: str, names: list[str], sequences: list[int], seq_len: int, to: int, sets: list[str],
            device: str = "cpu") -> list[dict]:
    """One row per optimizer: measured peak and seconds at each m, the fit, its extrapolation to ``to`` and the
    memory model's figure at each m and at ``to``."""
    cfg = model_config(preset, max_seq_len=seq_len)
    settings = parse_settings(sets, [], names)
    rows = []
    for name in names:
        fixed = settings[name].fixed if name in settings else {}
        cls = get_backend(name)
        hp = make_hyper(cls, fixed)
        measured, seconds = {}, {}
        for m in sequences:
            measured[m], seconds[m] = step_peak(preset, name, m, seq_len, device, **fixed)
            print(f"{name} m={m}: {measured[m] / GIB:.2f} GiB, {seconds[m]:.1f} s", file=sys.stderr, flush=True)
        base, per = fit(measured)
        model = {m: memory_bytes(cfg, cls, hp, m, seq_len) for m in [*sequences, to]}
        rows.append({"optimizer": name, "settings": fixed, "preset": preset, "seq_len": seq_len,
                     "measured_gib": {m: b / GIB for m, b in measured.items()}, "seconds": seconds,
                     "fixed_gib": base / GIB, "per_sequence_gib": per / GIB,
                     "extrapolated_gib": (base + per * to) / GIB,
                     "model_gib": {m: b / GIB for m, b in model.items()},
                     "model_error": {m: model[m] / measured[m] - 1 for m in sequences}})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="45m", help="model preset (its shape; weights random)")
    parser.add_argument("--sequences", default="1,2", help="micro-batch sizes m measured, comma-separated")
    parser.add_argument("--seq-len", type=int, default=1024)
    parser.add_argument("--to", type=int, default=32, help="the micro-batch size extrapolated to")
    parser.add_argument("--optimizers", default="adamw,gn,layerwise-gn")
    parser.add_argument("--set", dest="sets", action="append", default=[],
                        help="a setting of every optimizer that has it, e.g. sub_batch=1, or gn.sub_batch=1")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", help="write every figure here")
    args = parser.parse_args(argv)
    names = args.optimizers.split(",")
    sets = [s if "." in s.split("=")[0] else f"{n}.{s}" for s in args.sets for n in names
            if "." in s.split("=")[0] or hasattr(get_backend(n).Hyper(), s.split("=")[0])]
    rows = measure(args.preset, names, [int(m) for m in args.sequences.split(",")], args.seq_len, args.to, sets,
                   args.device)
    print(f"{'optimizer':24} {'settings':14} {'m':>3} {'measured GiB':>13} {'model GiB':>10} {'model err':>9} {'s':>7}")
    for r in rows:
        label = ",".join(f"{k}={v}" for k, v in r["settings"].items()) or "-"
        for m, gib in r["measured_gib"].items():
            print(f"{r['optimizer']:24} {label:14} {m:>3} {gib:>13.2f} {r['model_gib'][m]:>10.2f} "
                  f"{r['model_error'][m]:>+9.1%} {r['seconds'][m]:>7.1f}")
        print(f"{r['optimizer']:24} {label:14} {args.to:>3} {r['extrapolated_gib']:>13.2f} "
              f"{r['model_gib'][args.to]:>10.2f}   (fit: {r['fixed_gib']:.2f} GiB + {r['per_sequence_gib']:.3f} GiB "
              "a sequence, extrapolated)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
