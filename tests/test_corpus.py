"""Corpora (benchmark/data/corpus.py): real folders, the held-out split, the offline fallback, bad paths."""

import json
import os
from pathlib import Path

import pytest

from benchmark import BenchError
from benchmark.data.corpus import (
    HELD_OUT_FRACTION,
    Corpus,
    corpus_from_path,
    load_texts,
    resolve_corpus,
    stdlib_corpus,
)


def test_enwiki_folder_has_explicit_validation(enwiki):
    c = corpus_from_path(enwiki)
    assert len(c.train_files) == 5 and len(c.validation_files) == 1
    assert c.describe()["validation"] == "files"


def test_unknown_corpus_and_bad_paths_fail_with_one_line(tmp_path):
    with pytest.raises(BenchError, match="valid corpora: c4, python-stdlib, pydoc-topics"):
        resolve_corpus("nope", None, True)
    with pytest.raises(BenchError, match="does not exist"):
        resolve_corpus(str(tmp_path / "missing"), None, True)
    with pytest.raises(BenchError, match="no readable"):
        resolve_corpus(str(tmp_path), None, True)


def test_offline_default_is_the_standard_library_with_a_warning_only_where_allowed():
    with pytest.warns(UserWarning, match="python-stdlib"):
        c = resolve_corpus(None, None, True)
    assert c.name == "python-stdlib" and c.kind == "stdlib"
    with pytest.raises(BenchError, match="pass --data"):
        resolve_corpus(None, "c4", False)


def test_the_standard_library_holds_out_whole_modules_and_skips_tests():
    c = stdlib_corpus()
    train, val = set(c.train_files), set(c.validation_files)
    assert train and val and not train & val
    assert len(val) / (len(train) + len(val)) == pytest.approx(HELD_OUT_FRACTION, abs=0.03)
    assert not any(part in ("test", "tests", "site-packages") for f in train | val
                   for part in os.path.relpath(f, c.root).split(os.sep)[:-1])
    assert all(f.endswith(".py") for f in train | val)
    assert stdlib_corpus() == c  # the same files in the same order, every time
    texts = load_texts(c, "validation")
    assert len(texts) == len(val) and texts[0] == Path(c.validation_files[0]).read_text(encoding="utf-8")
    d = c.describe()
    assert (d["train_files"], d["validation_files"], d["fingerprint"]) == (len(train), len(val), c.fingerprint())


def test_a_changed_file_changes_the_fingerprint_of_a_module_corpus(tmp_path):
    root = tmp_path / "lib"
    (root / "pkg").mkdir(parents=True)
    for name in ("a.py", "pkg/b.py"):
        (root / name).write_text(f"# {name}\nx = 1\n")
    files = (str(root / "a.py"), str(root / "pkg" / "b.py"))
    before = Corpus("python-stdlib", "stdlib", files[:1], files[1:], root=str(root))
    key = before.key()
    (root / "pkg" / "b.py").write_text("# pkg/b.py\nx = 2\n")
    assert before.key() != key  # same name, other content: another corpus


def test_env_var_selects_the_corpus(tmp_path, monkeypatch):
    (tmp_path / "mytext").mkdir()
    (tmp_path / "mytext" / "train.jsonl").write_text(json.dumps({"text": "some words"}) + "\n")
    monkeypatch.setenv("OPTBENCH_DATA", str(tmp_path / "mytext"))
    assert resolve_corpus(None, "c4", False).name == "mytext"


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
