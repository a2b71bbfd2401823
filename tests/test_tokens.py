"""Tokenizer and packed token files (benchmark/data/tokens.py): cached, deterministic, offline. Small sizes: a
byte-level BPE trained on 50K characters, as one trained on millions, in well under a second."""

import os
import warnings
from pathlib import Path

from benchmark.data.corpus import resolve_corpus
from benchmark.data.tokens import prepare
from benchmark.hashing import file_hash


def test_prepare_is_cached_and_deterministic():
    corpus = resolve_corpus("python-stdlib", None, True)
    d = prepare(corpus, 512, 300_000, 50_000, 50_000)
    mtime = os.path.getmtime(d.train_path)
    again = prepare(corpus, 512, 300_000, 50_000, 50_000)
    assert again.train_path == d.train_path and os.path.getmtime(d.train_path) == mtime
    assert d.info["train_tokens"] > 50_000 and d.info["validation_tokens"] > 10_000
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(d.tokenizer_path)
    assert tok.get_vocab_size() == 512
    assert tok.decode(tok.encode("The quick brown fox.").ids) == "The quick brown fox."
    assert d.info["tokens_sha256"] == file_hash(d.train_path, d.validation_path)


def test_builtin_corpus_prepares_offline():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        c = resolve_corpus(None, None, True)
    d = prepare(c, 300, 200_000, 50_000, 50_000)
    assert d.info["train_tokens"] > 10_000 and d.info["validation_documents"] >= 1
    assert Path(d.validation_path).stat().st_size > 0


def test_the_embedded_corpus_tokenizes_to_the_same_arrays_twice(tmp_path, monkeypatch):
    corpus = resolve_corpus("python-stdlib", None, True)
    digests = []
    for cache in ("one", "two"):  # two fresh caches: tokenizer trained and text packed from scratch each time
        monkeypatch.setenv("OPTBENCH_CACHE", str(tmp_path / cache))
        d = prepare(corpus, 300, 200_000, 50_000, 50_000)
        digests.append((d.info["tokens_sha256"], file_hash(d.tokenizer_path)))
        assert d.info["validation_tokens"] > 10_000 and d.corpus.key() == corpus.key()
    assert digests[0] == digests[1]
