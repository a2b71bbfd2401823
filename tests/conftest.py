"""Shared fixtures. Tests that need real text read the shared corpus (``../shared/data/enwiki-2015`` or
``$OPTBENCH_TEST_DATA/enwiki-2015``) where it exists, else the embedded default corpus (this Python's
standard library source): the test command passes on a machine that has only the repository."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from tests.helpers import SMOKE_SWEEP, SMOKE_TUNE_BUDGET

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("OPTBENCH_TEST_DATA", ROOT.parent / "shared" / "data"))
ENWIKI = SHARED_DATA / "enwiki-2015"


@pytest.fixture(scope="session", autouse=True)
def _cache(tmp_path_factory):
    """One tokenizer/token cache per test session, never the user's."""
    os.environ["OPTBENCH_CACHE"] = str(tmp_path_factory.mktemp("optbench-cache"))
    os.environ["OPTBENCH_OFFLINE"] = "1"
    os.environ.pop("OPTBENCH_DATA", None)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(autouse=True)
def _threads():
    """Every test leaves torch's thread count as it found it: a sweep run at another count differs in the last
    bits, and the tests that compare two sweeps bit for bit would then depend on the order tests run in."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def text_data() -> str:
    """What tests pass as ``--data``: the shared corpus' folder, or the embedded corpus' name."""
    return str(ENWIKI) if ENWIKI.exists() else "python-stdlib"


@pytest.fixture(scope="session")
def enwiki() -> Path:
    """The shared corpus itself, for the tests about reading a folder of files."""
    if not ENWIKI.exists():
        pytest.skip(f"shared corpus not here: {ENWIKI}")
    return ENWIKI


BYTE_EOS = 256  # documents end with this id; bytes are ids 0..255


@pytest.fixture(scope="session")
def token_data(tmp_path_factory):
    """The smoke workload's data for the fast tier: real text (the embedded corpus) as packed token files, each
    byte its own token and each document ended by ``BYTE_EOS``, as ``prepare`` writes them but without training a
    tokenizer. The end-to-end tier reads ``smoke_data``, prepared the way a run prepares it."""
    import numpy as np

    from benchmark.data.corpus import load_texts, resolve_corpus
    from benchmark.data.tokens import PreparedData, token_dtype
    from benchmark.hashing import file_hash
    from benchmark.workload.presets import get_workload

    w = get_workload("smoke")
    corpus = resolve_corpus("python-stdlib", None, True)
    folder = tmp_path_factory.mktemp("byte-tokens")
    paths = {}
    for split, chars in (("train", 600_000), ("validation", 100_000)):
        docs = load_texts(corpus, split, chars)
        ids = np.concatenate([np.append(np.frombuffer(d.encode(), np.uint8), BYTE_EOS) for d in docs])
        paths[split] = folder / f"{split}.bin"
        ids.astype(token_dtype(w.vocab_size)).tofile(paths[split])
    info = {"cache_key": "bytes", "tokenizer": "bytes", "tokens_sha256": file_hash(*paths.values())}
    return w, PreparedData(corpus, w.vocab_size, "", str(paths["train"]), str(paths["validation"]), info)


@pytest.fixture(scope="session")
def smoke_data(text_data):
    """The smoke workload's prepared data on real text."""
    from benchmark.data.corpus import resolve_corpus
    from benchmark.data.tokens import prepare
    from benchmark.workload.presets import get_workload

    w = get_workload("smoke")
    corpus = resolve_corpus(text_data, None, False)
    return w, prepare(corpus, w.vocab_size, w.train_chars, w.validation_chars, w.tokenizer_chars)


@pytest.fixture(scope="session")
def smoke_results(tmp_path_factory, text_data):
    """A real smoke sweep: two optimizers, two seeds, so every figure and interval has data."""
    from benchmark.sweep.suite import run_suite
    from benchmark.trial.hardware import Hardware

    results = tmp_path_factory.mktemp("results")
    run_suite(*SMOKE_SWEEP, text_data, results, Hardware("cpu"), tune_budget=SMOKE_TUNE_BUDGET)
    return results


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
