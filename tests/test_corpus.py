"""Corpora (benchmark/corpus.py): real folders, the held-out split, the offline fallback, bad paths."""

import json

import pytest

from benchmark import BenchError
from benchmark.corpus import Corpus, corpus_from_path, load_texts, resolve_corpus


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
    text.write_text("\n".join(json.dumps({"text": f"document number {i} " * 20}) for i in range(200)))
    c = corpus_from_path(text)
    train, val = load_texts(c, "train"), load_texts(c, "validation")
    assert val and train and not set(train) & set(val)
    assert len(train) + len(val) == 200
    assert load_texts(c, "validation") == val


def test_fingerprint_follows_the_content_not_the_path(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for folder, text in ((a, "one"), (b, "one")):
        folder.mkdir()
        (folder / "train.jsonl").write_text(json.dumps({"text": text}) + "\n")
    assert corpus_from_path(a).fingerprint() != corpus_from_path(b).fingerprint()  # the name differs
    (b / "train.jsonl").write_text(json.dumps({"text": "two"}) + "\n")
    renamed = Corpus("a", "files", train_files=(str(b / "train.jsonl"),))
    assert renamed.fingerprint() != corpus_from_path(a).fingerprint()  # same name, other text
    moved = Corpus("a", "files", train_files=(str(a / "train.jsonl"),))
    assert moved.fingerprint() == corpus_from_path(a).fingerprint()
