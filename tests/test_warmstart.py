"""Where a trial starts (benchmark/trial/warmstart.py): the shared AdamW warm start is trained once per seed and
reused; an interrupted trial's checkpoint comes first."""

import dataclasses

import pytest
import torch

from benchmark.results.store import ResultsStore
from benchmark.trial.checkpoint import Checkpoint
from benchmark.trial.hardware import Hardware
from benchmark.trial.identity import Trial
from benchmark.trial.run import build_module
from benchmark.trial.warmstart import ensure_warm_start, trial_start, warm_start_path


@pytest.mark.slow
def test_the_warm_start_is_trained_once_and_a_checkpoint_comes_first(smoke_data, tmp_path):
    w, data = smoke_data
    w = dataclasses.replace(w, name="warm-test", warm_start_steps=3)
    assert warm_start_path(dataclasses.replace(w, warm_start_steps=0), data, 0) is None
    path = ensure_warm_start(w, data, 0, Hardware("cpu"))
    assert path == warm_start_path(w, data, 0) and path.exists()
    mtime = path.stat().st_mtime_ns
    assert ensure_warm_start(w, data, 0, Hardware("cpu")) == path and path.stat().st_mtime_ns == mtime
    assert warm_start_path(w, data, 1) != path

    trial = Trial("warm", w, "muon", (), 2, 0, corpus=data.corpus.key())
    store = ResultsStore(tmp_path)
    warm = trial_start(trial, data, store, Hardware("cpu"))
    assert not warm.resumes
    fresh = build_module(trial, data, None, w.max_steps).model.state_dict()
    assert any(not torch.equal(warm.model[k], fresh[k]) for k in fresh)  # 3 AdamW steps moved it
    started = build_module(trial, data, warm.model, w.max_steps).model.state_dict()
    assert all(torch.equal(warm.model[k], started[k]) for k in fresh)

    Checkpoint(model=fresh, backend={}, progress={"host": {}, "trial": {}}, rng=torch.get_rng_state()).save(
        store.checkpoint_path(trial.run_id))
    assert trial_start(trial, data, store, Hardware("cpu")).resumes
