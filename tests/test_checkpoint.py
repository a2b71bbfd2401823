"""The one checkpoint format (benchmark/trial/checkpoint.py): warm starts and resume checkpoints round-trip
through a weights-only load."""

import torch

from benchmark.trial.checkpoint import Checkpoint, cpu_state
from tests.helpers import tiny_model


def test_a_resume_checkpoint_round_trips_with_a_weights_only_load(tmp_path):
    model = tiny_model()
    opt = torch.optim.AdamW(model.parameters())
    model(torch.zeros(1, 4, dtype=torch.long)).sum().backward()
    opt.step()
    saved = Checkpoint(model=cpu_state(model), backend={"step_count": 3, "optimizers": [opt.state_dict()]},
                       progress={"host": {"step_idx": 3, "step_log": [{"train_loss": float("nan")}]},
                                 "trial": {"status": "running", "evals": [], "initial_loss": None}},
                       rng=torch.get_rng_state())
    saved.save(tmp_path / "t.ckpt")
    back = Checkpoint.load(tmp_path / "t.ckpt")
    assert back.resumes
    assert all(torch.equal(back.model[k], v) for k, v in saved.model.items())
    assert back.backend["step_count"] == 3 and back.progress["trial"]["status"] == "running"
    assert torch.equal(back.rng, saved.rng)
    state = back.backend["optimizers"][0]["state"][0]
    assert torch.equal(state["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])


def test_a_warm_start_is_a_checkpoint_of_weights_only(tmp_path):
    model = tiny_model()
    Checkpoint(model=cpu_state(model)).save(tmp_path / "w.ckpt")
    warm = Checkpoint.load(tmp_path / "w.ckpt")
    assert not warm.resumes and warm.backend is None and warm.rng is None
    other = tiny_model(seed=1)
    other.load_state_dict(warm.model)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), other.parameters()))
