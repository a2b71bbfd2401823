"""Token streams (benchmark/data/streams.py): micro-batches as a function of the seed, a fixed validation set,
and the per-step dataset's split of rows over processes."""

import numpy as np
import torch

from benchmark.data.streams import MicroBatchStream, PackedSequences, StepDataset, validation_batches


def test_microbatch_order_is_a_function_of_the_seed(token_data):
    w, d = token_data
    seqs = PackedSequences(d.train_path, w.seq_len, d.vocab_size)
    a, b = MicroBatchStream(seqs, 8, seed=0), MicroBatchStream(seqs, 8, seed=0)
    c = MicroBatchStream(seqs, 8, seed=1)
    assert all(np.array_equal(a.microbatch(g), b.microbatch(g)) for g in (0, 5, 1000))
    assert not np.array_equal(a.microbatch(3), c.microbatch(3))
    mb = a.microbatch(7)
    assert mb.shape == (8, w.seq_len + 1) and mb.max() < w.vocab_size


def _rows(stream, n_batches):
    """The sequence indices the first ``n_batches`` micro-batches read, checked against their tokens."""
    n = stream.seqs.num_sequences
    out = []
    for g in range(n_batches):
        positions = [stream.position(p) for p in range(g * stream.micro_batch, (g + 1) * stream.micro_batch)]
        idx = [int(stream._perm(i // n)[i % n]) for i in positions]
        assert np.array_equal(stream.microbatch(g), stream.seqs.get(np.array(idx)))
        out += idx
    return out


def test_warm_start_trial_and_draws_read_disjoint_sequences_until_the_corpus_is_exhausted(token_data):
    w, d = token_data
    seqs = PackedSequences(d.train_path, w.seq_len, d.vocab_size)
    n, m = seqs.num_sequences, 8
    warm = MicroBatchStream(seqs, m, seed=0)
    train = MicroBatchStream(seqs, m, seed=0, start=5 * m)
    draw = MicroBatchStream(seqs, m, seed=0, backward=True)
    budget = (n // m - 5) // 2  # micro-batches the trial and its draws may each read
    reads = _rows(warm, 5) + _rows(train, budget) + _rows(draw, budget)
    assert len(set(reads)) == len(reads)  # not one sequence twice
    assert _rows(train, 1) == _rows(warm, 6)[-m:]  # the trial picks up where the warm start stopped
    assert {draw.position(p) for p in range(m)} == set(range(n - m, n))
    assert draw.position(n) == n and train.position(n) == n + 5 * m  # beyond the corpus: a second pass


def test_validation_set_is_fixed(token_data):
    w, d = token_data
    seqs = PackedSequences(d.validation_path, w.seq_len, d.vocab_size)
    a = validation_batches(seqs, w.val_tokens, w.micro_batch)
    assert sum(b.shape[0] for b in a) == w.val_tokens // w.seq_len
    assert all(np.array_equal(x, y) for x, y in zip(a, validation_batches(seqs, w.val_tokens, w.micro_batch)))


def test_a_step_holds_its_k_microbatches_and_each_rank_its_rows(token_data, monkeypatch):
    w, d = token_data
    stream = MicroBatchStream(PackedSequences(d.train_path, w.seq_len, d.vocab_size), 8, seed=0)
    ds = StepDataset(stream, k=3, start=2, stop=5)
    assert len(ds) == 3
    item = ds[1]  # outer step 3: micro-batches 9, 10, 11
    assert item["step"] == 3 and item["tokens"].shape == (3, 8, w.seq_len + 1)
    assert torch.equal(item["tokens"][2], stream.microbatch(11))
    monkeypatch.setattr("benchmark.data.streams.process_rank", lambda: (1, 2))
    assert torch.equal(ds[1]["tokens"][2], stream.microbatch(11)[1::2])
