"""Token streams (benchmark/streams.py): micro-batches as a function of the seed, a fixed validation set,
and the per-step dataset's split of rows over processes."""

import numpy as np
import torch

from benchmark.streams import MicroBatchStream, PackedSequences, StepDataset, validation_batches


def test_microbatch_order_is_a_function_of_the_seed(smoke_data):
    w, d = smoke_data
    seqs = PackedSequences(d.train_path, w.seq_len, d.vocab_size)
    a, b = MicroBatchStream(seqs, 8, seed=0), MicroBatchStream(seqs, 8, seed=0)
    c = MicroBatchStream(seqs, 8, seed=1)
    ls = MicroBatchStream(seqs, 8, seed=0, stream=1)
    assert all(np.array_equal(a.microbatch(g), b.microbatch(g)) for g in (0, 5, 1000))
    assert not np.array_equal(a.microbatch(3), c.microbatch(3))
    assert not np.array_equal(a.microbatch(3), ls.microbatch(3))
    mb = a.microbatch(7)
    assert mb.shape == (8, w.seq_len + 1) and mb.max() < w.vocab_size
    # one epoch visits every sequence exactly once
    n = seqs.num_sequences
    seen = np.concatenate([a._perm(0)[i : i + 8] for i in range(0, n - n % 8, 8)])
    assert len(set(seen.tolist())) == len(seen)


def test_validation_set_is_fixed(smoke_data):
    w, d = smoke_data
    seqs = PackedSequences(d.validation_path, w.seq_len, d.vocab_size)
    a = validation_batches(seqs, w.val_tokens, w.micro_batch)
    assert sum(b.shape[0] for b in a) == w.val_tokens // w.seq_len
    assert all(np.array_equal(x, y) for x, y in zip(a, validation_batches(seqs, w.val_tokens, w.micro_batch)))


def test_a_step_holds_its_k_microbatches_and_each_rank_its_rows(smoke_data, monkeypatch):
    w, d = smoke_data
    stream = MicroBatchStream(PackedSequences(d.train_path, w.seq_len, d.vocab_size), 8, seed=0)
    ds = StepDataset(stream, k=3, start=2, stop=5)
    assert len(ds) == 3
    item = ds[1]  # outer step 3: micro-batches 9, 10, 11
    assert item["step"] == 3 and item["tokens"].shape == (3, 8, w.seq_len + 1)
    assert torch.equal(item["tokens"][2], stream.microbatch(11))
    monkeypatch.setattr("benchmark.streams.process_rank", lambda: (1, 2))
    assert torch.equal(ds[1]["tokens"][2], stream.microbatch(11)[1::2])
