"""Shared fixtures. Tests that need real text read the shared corpus (``../shared/data/enwiki-2015`` or
``$OPTBENCH_TEST_DATA/enwiki-2015``) where it exists, else the embedded default corpus (this Python's
standard library source): the test command passes on a machine that has only the repository."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

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
    run_suite("iteration-complexity", "smoke", "adamw,muon", 2, text_data, results, Hardware("cpu"), tune_budget=2)
    return results


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
