"""The headline (benchmark/headline.py): what was found, in words generated from the numbers, with the
flags a reader needs (an interval that includes 1, a tuning optimum at a grid edge, a censored cell)."""

import pandas as pd

from benchmark.headline import headline, ratio_text, steps_text


def _row(opt, steps, sp, sp_ci, fo, fo_ci, best="muon", family="first-order", edge=False, k=8, target=3.2):
    return {"workload": "w", "k": k, "target": target, "tokens_per_step": 8192, "optimizer": opt, "family": family,
            "median_steps": steps, "steps_ci_low": None if steps is None else steps - 1,
            "steps_ci_high": None if steps is None else float("inf") if opt == "soap" else steps + 1,
            "budget": 60.0, "bracket": 1.0, "speedup_vs_adamw": sp, "speedup_vs_adamw_ci_low": sp_ci[0],
            "speedup_vs_adamw_ci_high": sp_ci[1], "best_first_order": best, "speedup_vs_best_first_order": fo,
            "speedup_vs_best_first_order_ci_low": fo_ci[0], "speedup_vs_best_first_order_ci_high": fo_ci[1],
            "at_edge": edge}


def test_the_headline_reads_the_largest_batch_and_the_tightest_target():
    rows = [_row("adamw", 30.0, 1.0, (1.0, 1.0), 0.5, (0.45, 0.55)),
            _row("muon", 15.0, 2.0, (1.8, 2.2), 1.0, (1.0, 1.0)),
            _row("soap", 25.0, 1.2, (0.9, 1.5), 0.6, (0.5, 0.7)),
            _row("gn", 5.0, 6.0, (5.5, 6.5), 3.0, (2.8, 3.2), family="gauss-newton", edge=True),
            _row("layerwise-gn", None, None, (None, None), None, (None, None), family="gauss-newton"),
            _row("gn", 1.0, 60.0, (50.0, 70.0), 30.0, (25.0, 35.0), family="gauss-newton", k=4)]  # a smaller K
    ((lead, lines),) = headline(pd.DataFrame(rows))
    assert lead.startswith("w: steps to validation loss 3.2 at K = 8 (8,192 tokens per step)")
    assert [line.split("**")[1] for line in lines] == ["gn", "muon", "soap", "adamw", "layerwise-gn"]
    assert lines[0] == ("**gn**: 5.0 [4.0, 6.0] steps, 6.00× [5.50, 6.50] vs AdamW, 3.00× [2.80, 3.20] vs the best "
                        "first-order method (muon) (its tuning optimum is at an edge of the grid searched).")
    assert "the best first-order method here" in lines[1]
    assert "[24.0, ≥60]" in lines[2] and "its interval vs AdamW includes 1" in lines[2]
    assert "vs AdamW" not in lines[3]
    assert lines[4] == "**layerwise-gn** did not reach it within the budget: ≥ 60 (censored)."


def test_numbers_are_rounded_to_what_the_grid_resolves():
    assert steps_text(12.345, 11.0, 13.0, 60, bracket=1) == "12.3 [11.0, 13.0]"
    assert steps_text(45.6, 44.0, 47.0, 60, bracket=2) == "46 [44, 47]"  # a 2-step bracket: no decimal
    assert steps_text(float("nan"), None, None, 60) == "≥ 60 (censored)"
    assert ratio_text(12.345, 10.0, float("inf")) == "12.3× [10.0, ∞]" and ratio_text(None) == "—"
