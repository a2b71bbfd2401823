"""Small builders shared by the tests: the command line in this process or in a child, a tiny model on real
text and a step context, generated records."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
import warnings
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from unittest import mock

import numpy as np
import torch

from benchmark.results.store import ResultsStore
from benchmark.testing import Drawer, backend_for, context, flat_params, real_batches, tiny_model  # noqa: F401  (re-exported)

# The end-to-end tier's shared sweep (the ``smoke_results`` fixture): two optimizers, two seeds, so that every
# figure and interval has data and some tuning trials are pruned; its run_suite arguments before the corpus.
SMOKE_SWEEP = ("iteration-complexity", "smoke", "adamw,muon", 2)
SMOKE_TUNE_BUDGET = 2


def bench(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """``bench ARGS`` through the console script's entry point (``benchmark.cli.main``), in this process: its exit
    status and what it printed, as a child's would be. A fresh warnings registry, so that a warning shows in every
    call as it would in every process."""
    from benchmark.cli import main

    out, err, formatwarning = io.StringIO(), io.StringIO(), warnings.formatwarning
    with mock.patch.dict(os.environ, env or {}), mock.patch.object(sys, "argv", ["bench", *args]), \
            warnings.catch_warnings(), redirect_stdout(out), redirect_stderr(err):
        warnings.simplefilter("default")
        warnings.showwarning = _to_stderr  # as a process shows them, not into pytest's record
        try:
            code = main()
        finally:
            warnings.formatwarning = formatwarning  # main() sets its one-line format for the process
    return subprocess.CompletedProcess(["bench", *args], code, out.getvalue(), err.getvalue())


def _to_stderr(message, category, filename, lineno, file=None, line=None) -> None:
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def bench_process(*args: str, env: dict | None = None, cwd=None) -> subprocess.CompletedProcess:
    """``bench ARGS`` as a child process: where the process itself is under test (its plugins, signals)."""
    return subprocess.run([sys.executable, "-m", "benchmark.cli", *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, **(env or {})}, timeout=900)


def kill_at_first_checkpoint(proc, results, kill) -> str:
    """Wait until the sweep ``proc`` writing into ``results`` has saved a resume checkpoint, ``kill()`` it, and
    return the run id of the trial it interrupted."""
    work, deadline = Path(results) / "work", time.time() + 300
    while time.time() < deadline and not list(work.glob("*.ckpt")) and proc.poll() is None:
        time.sleep(0.02)
    ended = proc.poll()
    kill()
    proc.wait()
    ckpts = list(work.glob("*.ckpt"))
    if not ckpts:
        said = proc.stderr.read() if proc.stderr is not None else ""
        raise AssertionError(f"no checkpoint appeared before the kill (the process {'ended with ' + str(ended) if ended is not None else 'had not ended'}): {said[-3000:]}")
    return ckpts[0].stem


def record_summary(results) -> dict:
    """run id -> (status, steps run, steps to target, forward passes, val losses, train losses) of every
    record in a results folder: what two sweeps must share to count as the same."""
    out = {}
    for rec in ResultsStore(results).records()[0]:
        r = rec["run"]
        out[r["run_id"]] = (r["status"], r["steps_run"], r["steps_to_target"], r["costs"]["forward"],
                            [e["val_loss"] for e in rec["evals"]], [s["train_loss"] for s in rec["steps"]])
    return out


V, T = 32, 8
SMALL = dict(vocab_size=V, d_model=8, n_layers=2, n_heads=2, d_ff=16, max_seq_len=T)


def dense_gauss_newton(data) -> dict:
    """A float64 model small enough for dense matrices, one real-text micro-batch, its full Jacobian J,
    the Gauss-Newton matrix G = JᵀHJ and the loss gradient, all formed explicitly."""
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from models.layout import model_layout
    from optimizers.interface import split_batch

    model = tiny_model(dtype=torch.float64, **SMALL)
    batch = real_batches(data, 1, 2, T, V)[0]
    x, y = split_batch(batch)
    params = {n: p.detach().clone() for n, p in model.named_parameters()}
    names = list(params)
    sizes = [params[n].numel() for n in names]

    def unflat(v):
        return {n: t.view(params[n].shape) for n, t in zip(names, v.split(sizes))}

    def logits(v):
        return torch.func.functional_call(model, unflat(v), (x,)).flatten(0, 1)

    flat = torch.cat([params[n].flatten() for n in names])
    with sdpa_kernel(SDPBackend.MATH):
        J = torch.autograd.functional.jacobian(logits, flat).reshape(-1, flat.numel())  # (N*V, P)
    z = logits(flat).detach()
    N = z.shape[0]
    p = torch.softmax(z, -1)
    H = torch.block_diag(*[(torch.diag(p[i]) - torch.outer(p[i], p[i])) / N for i in range(N)])
    grad = J.T @ ((p - F.one_hot(y.flatten(), V)).flatten() / N)
    return dict(model=model, data=data, x=x, y=y, params=params, names=names, flat=flat, unflat=unflat,
                G=J.T @ H @ J, grad=grad, batch=batch, smap=model_layout(model, T).stages)


def cat(d, names):
    return torch.cat([d[n].flatten() for n in names])


def synthetic_record(optimizer: str, k: int, seed: int, lr: float = 0.01, *, role: str = "seed", rate: float = 0.1,
                     start: float = 4.0, floor: float = 3.0, budget: int = 30, targets=(3.6, 3.4, 3.2),
                     workload: str = "cpu", version: int = 7, corpus: str = "python-stdlib", diverge_at=None,
                     stop_at=None, family: str | None = None, failed_at: int | None = None,
                     cell_trials: list[str] | None = None, **tuning) -> dict:
    """A schema-2 record of a run whose validation loss decays as floor + (start - floor) exp(-rate step),
    evaluated every step, with the harness' stopping rules: at its last target, at its budget, where it
    diverges (``diverge_at``: the loss turns non-finite) or where it is pruned (``stop_at``). With
    ``failed_at`` the trial raised at that step: status ``failed``, its ``failure``, the evaluations before;
    ``cell_trials`` is what a tuning record lists as its cell's planned tuning trials; ``tuning``: ``_tuned``'s arguments."""
    from benchmark.results.curves import crossing
    from benchmark.results.record import SCHEMA_VERSION

    evals, status = [], "budget"
    for step in range(budget + 1):
        if failed_at is not None and step >= failed_at:
            status = "failed"
            break
        loss = floor + (start - floor) * float(np.exp(-rate * step))
        if diverge_at is not None and step >= diverge_at:
            loss, status = float("nan"), "diverged"
        evals.append({"step": step, "val_loss": loss, "train_loss": loss, "forward_equivalents": 3.0 * k * step,
                      "train_seconds": 0.01 * k * step, "tokens": 1024 * k * step, "peak_memory_mib": 100.0})
        if status == "diverged" or loss <= min(targets):
            status = "reached" if status != "diverged" else status
            break
        if stop_at is not None and step >= stop_at:
            status = "pruned"
            break
    steps, losses = [e["step"] for e in evals], [e["val_loss"] for e in evals]
    found = {f"{t:g}": crossing(steps, losses, t) for t in targets}
    finite = [x for x in losses if np.isfinite(x)]
    run = {"run_id": f"{workload}-{optimizer}-k{k}-s{seed}-{lr:g}", "suite": "iteration-complexity", "role": role,
           "reason": "grid" if role == "tune" else "seed", "workload": workload, "workload_version": version,
           "workload_key": f"{workload}{version}", "corpus_key": corpus, "numerics": "", "optimizer": optimizer,
           "hparams": {"lr": lr}, "overrides": ["lr"], "k": k, "tokens_per_step": 1024 * k, "seed": seed,
           "status": status, "steps_run": steps[-1], "final_val_loss": losses[-1], "best_val_loss": min(finite),
           "steps_to_target": {t: f and f[0] for t, f in found.items()},
           "steps_to_target_bracket": {t: f and f[1] for t, f in found.items()},
           "costs": {"forward_equivalents": evals[-1]["forward_equivalents"]}, "started_at": seed * 1e4 + lr,
           "workload_config": {"max_steps": budget, "targets": list(targets)}, "code_version": "0.1.0+test",
           "corpus": {"name": corpus}, "device": {"type": "cpu", "name": "cpu"}, "host": "test"}
    if family is not None:
        run["optimizer_family"] = family
    if failed_at is not None:
        run["failure"] = {"type": "RuntimeError", "message": f"{optimizer} broke at step {failed_at}",
                          "step": failed_at, "log": f"logs/{run['run_id']}/traceback.txt"}
    if cell_trials is not None:
        run["cell_trials"] = list(cell_trials)
    return _tuned({"schema_version": SCHEMA_VERSION, "run": run, "evals": evals, "steps": []}, **tuning)


def _tuned(record: dict, protocol: str | None = None, overrides: dict | None = None, reason: str | None = None,
           run_fields: dict | None = None) -> dict:
    """``synthetic_record``'s ``record`` with a tuning ``protocol`` (none: an older record, the grid's), hyperparameters
    set beside ``lr`` (``overrides``: each then part of the setting and the run id), why it ran (``reason``) and any
    other run fields (``run_fields``)."""
    run = record["run"]
    for key, v in sorted((overrides or {}).items()):
        run["run_id"] += f"-{key}{v:g}" if isinstance(v, float) else f"-{key}{v}"
        run["hparams"][key] = v
    run["overrides"] = sorted(run["hparams"])
    if protocol is not None:
        run["run_id"], run["protocol"] = f"{run['run_id']}-{protocol}", protocol
    run["reason"] = reason or run["reason"]
    run.update(run_fields or {})
    return record


def write_records(results: Path, records) -> Path:
    store = ResultsStore(results)
    store.runs_dir.mkdir(parents=True, exist_ok=True)
    for rec in records:
        store.write(rec)
    return results


def as_schema_1(record: dict) -> dict:
    """The record as schema 1 wrote it: the setting as ``hparam_overrides`` and a copy of ``lr``."""
    run = {k: v for k, v in record["run"].items() if k != "overrides"}
    run["hparam_overrides"] = {k: run["hparams"][k] for k in record["run"]["overrides"]}
    run["lr"] = run["hparams"].get("lr")
    return {**record, "schema_version": 1, "run": run}


# The three tuning protocols of one base setup (the robustness suite's records, ``protocol_records``): each
# backend's base rate, and each hyperparameter value's factor on it (1 at the best value). lr 0.003 at beta2 0.95 is
# slow enough that a first-order backend never reaches the tightest target (a censored axis trial).
PROTOCOL_RATES = {"adamw": 0.1, "muon": 0.16, "soap": 0.13, "gn": 0.4}
PROTOCOL_FACTORS = {"lr": {0.003: 0.3, 0.01: 1.0, 0.03: 0.8}, "beta2": {0.9: 0.85, 0.95: 1.0, 0.99: 0.7},
                    "cooldown": {0.1: 0.9, 0.2: 1.0, 0.3: 0.95}}
# the walk's points: the grid's learning rates; coordinate descent from beta2 = 0.99 (lr, then beta2, then lr
# again at beta2 = 0.95: two of its points are off the selected setting's axes); WSD's lr and cooldown
PROTOCOL_POINTS = {
    None: [{"lr": v} for v in (0.003, 0.01, 0.03)],
    "coordinate": [*({"lr": v, "beta2": 0.99} for v in (0.003, 0.01, 0.03)),
                   *({"lr": 0.01, "beta2": v} for v in (0.9, 0.95)), *({"lr": v, "beta2": 0.95} for v in (0.003, 0.03))],
    "wsd": [*({"lr": v, "cooldown": 0.2} for v in (0.003, 0.01, 0.03)), *({"lr": 0.01, "cooldown": v} for v in (0.1, 0.3))]}
SELECTED = {None: {"lr": 0.01}, "coordinate": {"lr": 0.01, "beta2": 0.95}, "wsd": {"lr": 0.01, "cooldown": 0.2}}


def protocol_records(seeds: int = 3, gn_speedup: dict | None = None, gn_jitter: float = 0.0, k: int = 4) -> list[dict]:
    """Records of one base setup (cpu v7 · python-stdlib, one K) under the grid (no ``protocol`` field, as older
    records), coordinate and wsd protocols: every backend of ``PROTOCOL_RATES`` tuned on seed 0 over the protocol's
    points, its best rerun on seeds 1.. (each seed a few percent slower). First-order backends converge faster under
    the deeper protocols (×1.15, ×1.3); ``gn_speedup`` sets GN's rate per protocol as a multiple of AdamW's at that
    protocol (default 4), and ``gn_jitter`` moves GN's rate by that fraction up on even seeds and down on odd ones
    (so that its paired interval widens). A WSD tuning trial records cooldown-branch costs of 100 forward-equivalents."""
    records = []
    for protocol, points in PROTOCOL_POINTS.items():
        depth = {None: 1.0, "coordinate": 1.15, "wsd": 1.3}[protocol]
        for name, base in PROTOCOL_RATES.items():
            rate = base * depth if name != "gn" else (gn_speedup or {}).get(protocol, 4.0) * PROTOCOL_RATES["adamw"] * depth
            fields = {"branch_costs": {"forward_equivalents": 100.0}} if protocol == "wsd" else {}

            def run(p: dict, seed: int, role: str, why: str, rate=rate, name=name, protocol=protocol, fields=fields):
                factor = float(np.prod([PROTOCOL_FACTORS[key][v] for key, v in p.items()]))
                factor *= 1 + (gn_jitter if seed % 2 == 0 else -gn_jitter) * (name == "gn")
                return synthetic_record(name, k, seed, p["lr"], role=role, rate=rate * factor * (1 - 0.03 * seed),
                                        protocol=protocol, reason=why, run_fields=fields if role == "tune" else {},
                                        overrides={key: v for key, v in p.items() if key != "lr"}, family=None)

            records += [run(p, 0, "tune", "coordinate pass 1: " + ", ".join(f"{a}={b:g}" for a, b in p.items()))
                        for p in points]
            records += [run(SELECTED[protocol], s, "seed", "the cell's selected setting") for s in range(1, seeds)]
    return records
