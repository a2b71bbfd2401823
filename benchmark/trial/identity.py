"""A trial's identity: (workload, corpus, backend with its hyperparameters, K, seed) named by a content hash
that never moves (results on disk are found by it), its label in reports, and the micro-batches it reads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from benchmark.data.streams import MicroBatchStream, PackedSequences
from benchmark.data.tokens import PreparedData
from benchmark.results.record import GRID, run_id
from benchmark.workload.presets import Workload
from optimizers import get_backend, make_hyper


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
    reason: str = ""  # why the suite runs it (its grid, an extension of it, a seed rerun); not the identity
    prune_after: float | None = None  # a tuning trial stops here unless it reached its last target by then
    fixed: tuple[str, ...] = ()  # hyperparameters fixed from the command line (their values are in hparams)
    cell_trials: tuple[str, ...] = ()  # a tuning trial: the run ids of its cell's tuning as planned; not the identity
    protocol: str = GRID  # how its cell is tuned: another protocol's trials are other runs, and other report rows
    searched: tuple[str, ...] = ()  # keys a --grid searches beyond what the protocol tunes: a variant; not the identity

    @property
    def run_id(self) -> str:
        return run_id(self.workload.name, self.workload.key(), self.corpus, self.optimizer, self.hparams, self.k,
                      self.seed, self.numerics, self.protocol)

    def hyper(self):
        return make_hyper(get_backend(self.optimizer), dict(self.hparams))

    def label(self) -> str:
        """The optimizer as reports show it: with its command-line fixed settings, a variant of its own (its tuning
        protocol is part of its setup instead, as its numerics are: each protocol compares within itself)."""
        return variant(self.optimizer, self.hparams, self.fixed, self.searched)

    def describe(self) -> str:
        """One line's name for the trial: the optimizer (with its fixed settings), the setting its cell tunes,
        K and the seed, e.g. ``muon[momentum=0.9] lr=0.02 K=4 seed=0``."""
        tuned = " ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in self.hparams
                         if k not in self.fixed)
        protocol = f" ({self.protocol})" if self.protocol != GRID else ""
        return f"{self.label()}{protocol} {tuned or 'defaults'} K={self.k} seed={self.seed}"

    def stream(self, data: PreparedData, region: str) -> MicroBatchStream:
        """The micro-batches of this trial's seed in ``region``: "warm" (the warm start), "train" (the
        trial's steps, after the warm start's) or "draw" (the backend's fresh draws)."""
        w = self.workload
        seqs = PackedSequences(data.train_path, w.seq_len, data.vocab_size)
        if region == "draw":
            return MicroBatchStream(seqs, w.micro_batch, self.seed, backward=True)
        start = w.warm_start_sequences() if region == "train" else 0
        return MicroBatchStream(seqs, w.micro_batch, self.seed, start=start)


def variant(name: str, hparams, fixed, searched=()) -> str:
    """The label of an optimizer run with settings the command line fixed or searched beyond what its protocol
    tunes: ``name[key=value,...,key searched]``. Such a cell had another budget than the others, so it is a row
    of its own, never the optimizer's default row."""
    values = dict(hparams)
    shown = [f"{k}={values[k]:g}" if isinstance(values[k], float) else f"{k}={values[k]}" for k in sorted(fixed)]
    shown += [f"{k} searched" for k in sorted(searched)]
    return f"{name}[{','.join(shown)}]" if shown else name
