"""The path a researcher with a GPU takes, exercised on CPU (issue 26): the ``gpu`` preset (a BPE of 8192 trained
on a folder of C4-layout files, the 17M model, the shared AdamW warm start, a tuning trial of AdamW and of GN,
their records and the report) and the ``45m`` preset (a BPE of 32000, the paper's 45M shape) for one step,
under fp32 and bf16-mixed. Only sizes change, through ``--workload`` (the budget, K, the micro-batch, the
evaluation set, the text read): everything a GPU run touches runs here but the kernels."""

import gzip
import json

import pytest

from benchmark.data.corpus import load_texts, stdlib_corpus
from benchmark.results.store import ResultsStore
from tests.helpers import bench

# what shrinks: two steps at one K, a small micro-batch and evaluation set, a few MB of text; targets given (out of
# reach: every trial runs its budget) so that no calibration runs
SMALL = ["max_steps=2", "ks=1", "micro_batch=2", "warm_start_steps=2", "eval_every=1", "val_tokens=2048",
         "targets=2,1", "train_chars=1500000", "validation_chars=200000", "tokenizer_chars=1500000"]


@pytest.fixture(scope="module")
def c4_folder(tmp_path_factory):
    """A folder in C4's layout (gzipped JSON lines, ``{"text": ...}``, train and validation shards) of real
    text: the embedded corpus, so that the test needs nothing beyond the repository."""
    folder = tmp_path_factory.mktemp("c4")
    texts = load_texts(stdlib_corpus(), "train", 2_000_000)
    for name, part in (("train-00000-of-00001.jsonl.gz", texts[: len(texts) * 9 // 10]),
                       ("validation-00000-of-00001.jsonl.gz", texts[len(texts) * 9 // 10:])):
        with gzip.open(folder / name, "wt") as f:
            f.writelines(json.dumps({"text": t}) + "\n" for t in part)
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed"])
def test_the_gpu_presets_path_on_cpu(tmp_path, c4_folder, precision):
    results = tmp_path / "results"
    run = bench("run", "--preset", "gpu", "--data", str(c4_folder), "--results", str(results), "--optimizers",
                "adamw,gn", "--tune-budget", "1", "--seeds", "1", "--precision", precision,
                *[f"--workload={item}" for item in SMALL])
    assert run.returncode == 0, run.stderr[-3000:]
    records, _ = ResultsStore(results).records()
    runs = [r["run"] for r in records]
    assert sorted(r["optimizer"] for r in runs) == ["adamw", "gn"]
    for r in runs:
        assert r["steps_run"] == 2 and r["status"] == "budget"
        assert r["model_config"]["vocab_size"] == 8192 and 16e6 < r["num_parameters"] < 18e6
        assert r["hardware"]["precision"] == precision
    report = bench("report", "--results", str(results), "--out", str(tmp_path / "report"))
    assert report.returncode == 0, report.stderr[-2000:]
    assert "gn" in (tmp_path / "report" / "leaderboard.md").read_text()


@pytest.mark.slow
def test_the_45m_presets_path_on_cpu_for_one_step(tmp_path, c4_folder):
    results = tmp_path / "results"
    items = [i for i in SMALL if not i.startswith(("max_steps", "micro_batch"))] + ["max_steps=1", "micro_batch=1",
                                                                                   "seq_len=256"]
    run = bench("run", "--preset", "45m", "--data", str(c4_folder), "--results", str(results), "--optimizers",
                "adamw,gn", "--tune-budget", "1", "--seeds", "1", *[f"--workload={item}" for item in items])
    assert run.returncode == 0, run.stderr[-3000:]
    records, _ = ResultsStore(results).records()
    runs = [r["run"] for r in records]
    assert sorted(r["optimizer"] for r in runs) == ["adamw", "gn"]
    assert all(r["steps_run"] == 1 and r["model_config"]["vocab_size"] == 32000 for r in runs)
    assert all(40e6 < r["num_parameters"] < 50e6 for r in runs)
