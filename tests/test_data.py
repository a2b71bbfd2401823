import os
import warnings
from pathlib import Path

import numpy as np
import pytest

from benchmark import BenchError
from benchmark.data import (
    MicroBatchStream,
    PackedSequences,
    corpus_from_path,
    load_texts,
    prepare,
    resolve_corpus,
    validation_batches,
)


def test_enwiki_folder_has_explicit_validation(enwiki):
    c = corpus_from_path(enwiki)
    assert len(c.train_files) == 5 and len(c.validation_files) == 1
    assert c.describe()["validation"] == "files"


def test_unknown_corpus_and_bad_paths_fail_with_one_line(tmp_path):
    with pytest.raises(BenchError, match="valid corpora: c4, pydoc-topics"):
        resolve_corpus("nope", None, True)
    with pytest.raises(BenchError, match="does not exist"):
        resolve_corpus(str(tmp_path / "missing"), None, True)
    with pytest.raises(BenchError, match="no readable"):
        resolve_corpus(str(tmp_path), None, True)


def test_offline_fallback_is_builtin_with_a_warning_only_where_allowed():
    with pytest.warns(UserWarning, match="pydoc_data"):
        assert resolve_corpus(None, None, True).name == "pydoc-topics"
    with pytest.raises(BenchError, match="pass --data"):
        resolve_corpus(None, "c4", False)


def test_env_var_selects_the_corpus(enwiki, monkeypatch):
    monkeypatch.setenv("OPTBENCH_DATA", str(enwiki))
    assert resolve_corpus(None, "c4", False).name == "enwiki-2015"


def test_held_out_split_is_deterministic_and_disjoint(tmp_path):
    text = tmp_path / "corpus.jsonl"
    import json

    text.write_text("\n".join(json.dumps({"text": f"document number {i} " * 20}) for i in range(200)))
    c = corpus_from_path(text)
    train, val = load_texts(c, "train"), load_texts(c, "validation")
    assert val and train and not set(train) & set(val)
    assert len(train) + len(val) == 200
    assert load_texts(c, "validation") == val


def test_prepare_is_cached_and_deterministic(smoke_data):
    w, d = smoke_data
    mtime = os.path.getmtime(d.train_path)
    again = prepare(d.corpus, w.vocab_size, w.train_chars, w.validation_chars, w.tokenizer_chars)
    assert again.train_path == d.train_path and os.path.getmtime(d.train_path) == mtime
    assert d.info["train_tokens"] > 100_000 and d.info["validation_tokens"] > 10_000
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(d.tokenizer_path)
    assert tok.get_vocab_size() == w.vocab_size
    assert tok.decode(tok.encode("The quick brown fox.").ids) == "The quick brown fox."


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


def test_builtin_corpus_prepares_offline():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        c = resolve_corpus(None, None, True)
    d = prepare(c, 300, None, None, 200_000)
    assert d.info["train_tokens"] > 10_000 and d.info["validation_documents"] >= 1
    assert Path(d.validation_path).stat().st_size > 0
