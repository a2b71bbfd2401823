"""Token streams: fixed-length sequences over a packed token file, micro-batches as a pure function of
(seed, region, index), the fixed validation set, and the per-step dataset the Trainer iterates. Runs are
deterministic and resume without replaying a loader; a trial reads each training token at most once."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from benchmark import BenchError
from benchmark.data.tokens import PreparedData, token_dtype
from optimizers.distributed import process_rank


class PackedSequences:
    """Non-overlapping windows of ``seq_len + 1`` tokens (inputs and shifted targets) over a token file."""

    def __init__(self, path: str, seq_len: int, vocab_size: int) -> None:
        self.tokens = np.memmap(path, dtype=token_dtype(vocab_size), mode="r")
        self.seq_len = seq_len
        self.num_sequences = (len(self.tokens) - 1) // seq_len
        if self.num_sequences < 1:
            raise BenchError(f"{path}: {len(self.tokens)} tokens are too few for sequences of {seq_len}")

    def get(self, indices: np.ndarray) -> torch.Tensor:
        T = self.seq_len
        rows = np.stack([self.tokens[i * T : i * T + T + 1] for i in indices]).astype(np.int64)
        return torch.from_numpy(rows)  # (n, T+1)


class MicroBatchStream:
    """The g-th micro-batch of one region of a seed's order of the training sequences.

    A seed orders the training sequences once (a permutation; a pass beyond the first takes a further
    permutation). The warm start reads forward from the first sequence, the trial forward from where the
    warm start stops (``start``), and fresh draws (line searches) backward from the last one. The regions
    never meet while warm start, trial and draws together read no more sequences than the corpus holds,
    so no training token is read twice; the plan says beforehand when a trial would read more.
    """

    def __init__(self, seqs: PackedSequences, micro_batch: int, seed: int, start: int = 0,
                 backward: bool = False) -> None:
        self.seqs, self.micro_batch, self.seed = seqs, micro_batch, seed
        self.start, self.backward = start, backward
        self._perms: dict[int, np.ndarray] = {}

    def _perm(self, epoch: int) -> np.ndarray:
        if epoch not in self._perms:
            if len(self._perms) > 4:
                self._perms.clear()
            self._perms[epoch] = np.random.default_rng([self.seed, epoch]).permutation(self.seqs.num_sequences)
        return self._perms[epoch]

    def position(self, p: int) -> int:
        """Where the p-th sequence of this region sits in the seed's order (beyond the first pass: a
        further pass, read forward)."""
        n = self.seqs.num_sequences
        if self.backward:
            return n - 1 - p if p < n else p
        return self.start + p

    def microbatch(self, g: int) -> torch.Tensor:
        n = self.seqs.num_sequences
        positions = [self.position(p) for p in range(g * self.micro_batch, (g + 1) * self.micro_batch)]
        idx = np.array([self._perm(i // n)[i % n] for i in positions])
        return self.seqs.get(idx)  # (m, T+1)


def training_tokens(prepared: PreparedData, seq_len: int) -> int:
    """Training tokens a trial can read without reading one twice: the corpus' sequences of ``seq_len``."""
    return PackedSequences(prepared.train_path, seq_len, prepared.vocab_size).num_sequences * seq_len


def validation_batches(seqs: PackedSequences, n_tokens: int, micro_batch: int) -> list[torch.Tensor]:
    """The fixed validation set: the first ``n_tokens // T`` sequences, in micro-batches."""
    n = min(seqs.num_sequences, max(1, n_tokens // seqs.seq_len))
    return [seqs.get(np.arange(s, min(n, s + micro_batch))) for s in range(0, n, micro_batch)]


class StepDataset(Dataset):
    """Item i = outer step ``start + i``: its K micro-batches stacked (K, m / world, T+1), this rank's
    rows of each.

    Every rank sees all K micro-batches but only rows ``rank::world`` of each, so the global batch, the
    data order and the sequence of inner steps (one per micro-batch, for Gauss-Newton) do not depend on
    the number of processes.
    """

    def __init__(self, stream: MicroBatchStream, k: int, start: int, stop: int):
        self.stream, self.k, self.start, self.stop = stream, k, start, stop

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def __getitem__(self, i: int) -> dict:
        rank, world = process_rank()  # read here: the dataset may be built before the process group
        if self.stream.micro_batch % world:
            raise ValueError(f"micro-batch of {self.stream.micro_batch} sequences does not split over {world} processes")
        step = self.start + i
        mbs_KxMxT1 = [self.stream.microbatch(step * self.k + j)[rank::world] for j in range(self.k)]
        return {"step": step, "tokens": torch.stack(mbs_KxMxT1)}
