"""Views beyond the per-cell table (benchmark/report/profiles.py): performance profiles checked against a hand
count, and the best steps found after each tuning trial."""

import numpy as np
import pandas as pd
import pytest

from benchmark.report.profiles import performance_profiles, tuning_curves


def test_performance_profiles_count_cells_within_tau_of_the_best():
    rows = []
    # cell 1: a=10, b=15, c censored; cell 2: a=30, b=20, c=70; cell 3: nobody reaches it
    for target, values in ((3.0, {"a": 10, "b": 15, "c": None}), (2.0, {"a": 30, "b": 20, "c": 70}),
                           (1.0, {"a": None, "b": None, "c": None})):
        rows += [{"setup": "w", "k": 1, "target": target, "label": o, "median_steps": v}
                 for o, v in values.items()]
    profiles, cells, unsolved = performance_profiles(pd.DataFrame(rows), "median_steps",
                                                     taus=np.array([1.0, 1.5, 3.0, 4.0]))
    assert cells == 3 and unsolved == 1
    assert profiles["a"].tolist() == pytest.approx([1 / 3, 2 / 3, 2 / 3, 2 / 3])  # 10 best; 30 = 1.5 × 20
    assert profiles["b"].tolist() == pytest.approx([1 / 3, 2 / 3, 2 / 3, 2 / 3])
    assert profiles["c"].tolist() == pytest.approx([0, 0, 0, 1 / 3])  # 70 = 3.5 × 20; censored never counts


def test_tuning_curves_keep_the_best_so_far_in_the_order_trials_ran():
    runs = pd.DataFrame([
        {"setup": "w", "k": 2, "label": "o", "role": "tune", "run_id": r, "started_at": t, "status": s,
         "targets": ["3.5", "3"], "steps_to_3": v}
        for r, t, s, v in (("x", 3.0, "reached", 12.0), ("y", 1.0, "diverged", None), ("z", 2.0, "reached", 20.0))])
    curve = tuning_curves(runs)
    assert curve["trial"].tolist() == [1, 2, 3] and curve["status"].tolist() == ["diverged", "reached", "reached"]
    assert curve["best_steps"].tolist() == [float("inf"), 20.0, 12.0] and set(curve["target"]) == {3.0}
