"""Small builders shared by the backend tests: a tiny model on real text and a step context."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from benchmark.store import ResultsStore
from benchmark.streams import MicroBatchStream, PackedSequences
from models.transformer import Transformer, lm_loss, model_config
from optimizers.interface import Costs, StepContext


def real_batches(data, n: int, m: int, seq_len: int, vocab: int, seed: int = 0):
    """n micro-batches of m real-text sequences, token ids folded into ``vocab``."""
    seqs = PackedSequences(data.train_path, seq_len, data.vocab_size)
    s = MicroBatchStream(seqs, m, seed)
    return [s.microbatch(g) % vocab for g in range(n)]


class Drawer:
    """A deterministic source of fresh micro-batches with a cursor (like the harness's)."""

    def __init__(self, data, m, seq_len, vocab, seed=0):
        seqs = PackedSequences(data.train_path, seq_len, data.vocab_size)
        self.stream, self.vocab, self.cursor = MicroBatchStream(seqs, m, seed, backward=True), vocab, 0

    def __call__(self, n):
        out = [self.stream.microbatch(self.cursor + j) % self.vocab for j in range(n)]
        self.cursor += n
        return out


def kill_at_first_checkpoint(proc, results, kill) -> str:
    """Wait until the sweep ``proc`` writing into ``results`` has saved a resume checkpoint, ``kill()`` it, and
    return the run id of the trial it interrupted."""
    work, deadline = Path(results) / "work", time.time() + 300
    while time.time() < deadline and not list(work.glob("*.ckpt")) and proc.poll() is None:
        time.sleep(0.02)
    kill()
    proc.wait()
    ckpts = list(work.glob("*.ckpt"))
    assert ckpts, "no checkpoint appeared before the kill"
    return ckpts[0].stem


def tiny_model(seed=0, dtype=torch.float32, **overrides):
    torch.manual_seed(seed)
    cfg = dict(vocab_size=128, d_model=16, n_layers=2, n_heads=2, d_ff=32, max_seq_len=16)
    cfg.update(overrides)
    return Transformer(model_config("tiny", **cfg)).to(dtype)


def context(model, batches, drawer, step=0, total=50):
    return StepContext(model=model, microbatches=batches, num_microbatches=len(batches), draw=drawer,
                       step=step, total_steps=total, costs=Costs(), loss_fn=lm_loss)


def flat_params(model) -> np.ndarray:
    return torch.cat([p.detach().flatten() for p in model.parameters()]).numpy().copy()


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

    from optimizers.curvature import StageMap
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
                G=J.T @ H @ J, grad=grad, batch=batch, smap=StageMap.of(model, T))


def cat(d, names):
    return torch.cat([d[n].flatten() for n in names])
