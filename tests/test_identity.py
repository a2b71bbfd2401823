"""A trial's identity (benchmark/trial/identity.py): run ids name results on disk, so they never move."""

import pytest

from benchmark.data.corpus import corpus_from_path
from benchmark.sweep.plan import in_shard
from benchmark.trial.identity import Trial
from benchmark.workload.presets import Workload, get_workload


@pytest.fixture
def golden_corpus(tmp_path):
    folder = tmp_path / "c"
    folder.mkdir()
    (folder / "train.jsonl").write_text('{"text": "alpha beta"}\n{"text": "gamma delta"}\n')
    (folder / "validation.jsonl").write_text('{"text": "held out"}\n')
    return corpus_from_path(folder)


# The smoke preset as it was defined at 798ce7b: a workload's identity is its fields, whatever the presets say now.
SMOKE_AT_798CE7B = dict(
    name="smoke", version=1, description="CI smoke test: a 0.16M-parameter model, seconds per trial", model="smoke",
    vocab_size=512, seq_len=64, micro_batch=8, ks=(1, 4), max_steps=40, eval_every=2, val_tokens=16384,
    targets=(5.5, 5.0), targets_source="uncalibrated", warm_start_steps=0, warm_start_k=1, warm_start_lr=0.003,
    hub_corpus=None, allow_builtin_corpus=True, train_chars=2000000, validation_chars=400000,
    tokenizer_chars=1000000, pretrained_tokenizer=None, divergence_factor=1.5)  # and dtype "float32", since retired


def test_run_ids_and_shards_are_those_of_earlier_versions(golden_corpus):
    """Pinned values, computed by the code at 798ce7b: a record written then must still be found now."""
    assert golden_corpus.key() == "c:0e72cd78e8"
    w = Workload(**SMOKE_AT_798CE7B)
    assert w.key() == "cf6708e57b"
    tune = Trial("iteration-complexity", w, "adamw", (("lr", 0.003),), 1, 0, role="tune", corpus=golden_corpus.key())
    assert tune.run_id == "smoke-adamw-k1-s0-84de2d65b6"
    assert [in_shard(tune, (i, 3)) for i in (1, 2, 3)] == [False, False, True]
    seed = Trial("iteration-complexity", w, "gn", (("lr", 0.03),), 4, 2, role="seed", corpus=golden_corpus.key(),
                 numerics="bf16-mixed")
    assert seed.run_id == "smoke-gn-k4-s2-74c5a9bc3f"


def test_the_identity_ignores_the_role_but_not_the_setting(golden_corpus):
    w = get_workload("smoke", golden_corpus.key())
    base = Trial("iteration-complexity", w, "adamw", (("lr", 0.01),), 1, 0, role="tune", corpus=golden_corpus.key())
    assert Trial(**{**base.__dict__, "role": "seed"}).run_id == base.run_id
    for change in ({"hparams": (("lr", 0.03),)}, {"k": 4}, {"seed": 1}, {"numerics": "compile"}, {"corpus": "x"}):
        assert Trial(**{**base.__dict__, **change}).run_id != base.run_id, change
    assert base.hyper().lr == 0.01 and base.hyper().beta2 == 0.95
    assert base.describe() == "adamw lr=0.01 K=1 seed=0"
    fixed = Trial(**{**base.__dict__, "optimizer": "muon", "hparams": (("lr", 0.01), ("momentum", 0.9)),
                     "fixed": ("momentum",)})
    assert fixed.describe() == "muon[momentum=0.9] lr=0.01 K=1 seed=0"
