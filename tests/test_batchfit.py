"""The critical-batch fit (benchmark/report/batchfit.py) on synthetic runs: the batch-size fit with its interval over
seeds, and counts that do not follow the model, or that cannot be fitted, reported as such."""

import numpy as np
import pandas as pd
import pytest

from benchmark.report.batchfit import batch_fits


def _runs(steps_by_k: dict[int, list[float]], optimizer: str = "gn") -> pd.DataFrame:
    rows = []
    for k, steps in steps_by_k.items():
        for seed, s in enumerate(steps):
            rows.append({"setup": "w", "workload": "w", "workload_key": "x", "k": k, "label": optimizer,
                         "optimizer": optimizer, "role": "seed", "seed": seed, "run_id": f"{optimizer}-{k}-{seed}",
                         "tokens_per_step": 1000 * k, "setting": {"lr": 0.1}, "lr": 0.1, "final_val_loss": 3.0, "status": "reached",
                         "steps_to_3": s})
    return pd.DataFrame(rows)


def test_the_fit_recovers_b_noise_within_its_seed_interval():
    rng = np.random.default_rng(0)
    s_min, b_noise = 10.0, 8000.0
    steps = {k: list(s_min * (1 + b_noise / (1000 * k)) * rng.normal(1, 0.03, 6)) for k in (2, 4, 8, 16)}
    (fit,) = batch_fits(_runs(steps), pd.DataFrame(columns=["run_id", "step"])).to_dict("records")
    assert fit["follows_model"] and fit["r2"] > 0.95 and fit["points"] == 4
    assert fit["b_noise_ci_low"] < b_noise < fit["b_noise_ci_high"]
    assert fit["b_noise"] == pytest.approx(b_noise, rel=0.2)


def test_counts_that_do_not_follow_the_model_are_said_so():
    steps = {2: [30.0, 31.0, 29.0], 4: [10.0, 11.0, 9.0], 8: [25.0, 26.0, 24.0]}  # no 1/B shape
    (fit,) = batch_fits(_runs(steps), pd.DataFrame(columns=["run_id", "step"])).to_dict("records")
    assert not fit["follows_model"] and fit["r2"] < 0.9 and fit["why"] == f"R² {fit['r2']:.2f} below 0.9"


def test_a_backend_without_a_fit_is_named_with_why():
    steps = {2: [30.0, 31.0], 4: [16.0, 17.0], 8: [9.0, 10.0]}
    runs = pd.concat([_runs(steps), _runs({2: [20.0, 21.0]}, "muon"),  # ran at one batch size only
                      _runs({2: [20.0, 21.0], 4: [None, None], 8: [None, None]}, "soap")])  # reached at one
    fits = batch_fits(runs, pd.DataFrame(columns=["run_id", "step"])).set_index("label")
    assert fits.loc["gn", "follows_model"] and pd.isna(fits.loc["gn", "why"]) and fits.loc["gn", "seeds"] == 2
    assert fits.loc["muon", "why"] == "ran at 1 of the 3 batch sizes" and not fits.loc["muon", "follows_model"]
    assert fits.loc["soap", "why"] == "its median reached the target at 1 of 3 batch sizes"
    only_one = batch_fits(_runs({2: [20.0, 21.0]}), pd.DataFrame(columns=["run_id", "step"]))
    assert only_one.empty  # a setup run at one batch size: nothing to fit for anybody
