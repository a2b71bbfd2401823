"""The headline (benchmark/report/headline.py): what was found, in words generated from the numbers, with the
flags a reader needs (an interval that includes 1, a tuning optimum at a grid edge, a censored cell), the
seeds every interval rests on, and what it could not cover (a cell whose tuning is incomplete)."""

import pandas as pd

from benchmark.report.headline import headline, ratio_text, steps_text


def _row(opt, steps, sp, sp_ci, fo, fo_ci, best="muon", family="first-order", edge=False, k=8, target=3.2, seeds=3,
         tuned=(3, 3)):
    return {"setup": "w", "k": k, "target": target, "tokens_per_step": 8192, "label": opt, "family": family,
            "setting": "lr=0.01", "seeds": seeds, "median_steps": steps,
            "steps_ci_low": None if steps is None or seeds < 2 else steps - 1,
            "steps_ci_high": None if steps is None or seeds < 2 else float("inf") if opt == "soap" else steps + 1,
            "budget": 60.0, "bracket": 1.0, "speedup_vs_adamw": sp, "speedup_vs_adamw_ci_low": sp_ci[0],
            "speedup_vs_adamw_ci_high": sp_ci[1], "speedup_vs_adamw_seeds": seeds, "speedup_vs_adamw_at_least": None,
            "speedup_vs_adamw_at_most": None, "speedup_excludes_1": False, "best_first_order": best,
            "speedup_vs_best_first_order": fo, "speedup_vs_best_first_order_ci_low": fo_ci[0],
            "speedup_vs_best_first_order_ci_high": fo_ci[1], "speedup_vs_best_first_order_seeds": seeds,
            "speedup_vs_best_first_order_at_least": None, "speedup_vs_best_first_order_at_most": None,
            "at_edge": edge, "tuning_trials": tuned[0], "tuning_planned": tuned[1]}


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
    assert lines[0] == ("**gn**: 5.0 [4.0, 6.0] (n = 3) steps, 6.00× [5.50, 6.50] (n = 3) vs AdamW, 3.00× [2.80, "
                        "3.20] (n = 3) vs the best first-order method (muon) (its tuning optimum is at an edge of the "
                        "grid searched).")
    assert "the best first-order method here" in lines[1]
    assert "[24.0, ≥60]" in lines[2] and "its interval vs AdamW includes 1" in lines[2]
    assert "vs AdamW" not in lines[3]
    assert lines[4] == "**layerwise-gn** did not reach it within the budget: ≥ 60 (censored, n = 3)."


def test_numbers_are_rounded_to_what_the_grid_resolves_and_say_their_seeds():
    assert steps_text(12.345, 11.0, 13.0, 60, bracket=1) == "12.3 [11.0, 13.0]"
    assert steps_text(12.345, 11.0, 13.0, 60, bracket=1, seeds=3) == "12.3 [11.0, 13.0] (n = 3)"
    assert steps_text(45.6, 44.0, 47.0, 60, bracket=2) == "46 [44, 47]"  # a 2-step bracket: no decimal
    assert steps_text(float("nan"), None, None, 60) == "≥ 60 (censored)"
    assert steps_text(12.345, float("nan"), float("nan"), 60, bracket=1, seeds=1) == "12.3 (n = 1)"
    assert ratio_text(12.345, 10.0, float("inf")) == "12.3× [10.0, ∞]" and ratio_text(None) == "—"
    assert ratio_text(1.3212, 1.1, 1.55, seeds=3) == "1.32× [1.10, 1.55] (n = 3)"
    assert ratio_text(1.3212, None, None, seeds=1) == "1.32× (n = 1)"
    assert ratio_text(None, at_least=2.4) == "≥ 2.40×" and ratio_text(None, at_most=0.45) == "≤ 0.45×"


def _lines(rows) -> list[str]:
    ((_, lines),) = headline(pd.DataFrame(rows))
    return lines


def test_one_seed_shows_its_value_and_n_and_no_interval():
    one = (None, None)
    lines = _lines([_row("adamw", 30.0, 1.0, one, None, one, best="", seeds=1),
                    _row("muon", 15.0, 2.0, one, None, one, best="", seeds=1)])
    assert lines == ["**muon**: 15.0 (n = 1) steps, 2.00× (n = 1) vs AdamW.", "**adamw**: 30.0 (n = 1) steps."]


def test_one_backend_is_not_the_best_first_order_method_of_itself():
    lines = _lines([_row("adamw", 30.0, 1.0, (None, None), None, (None, None), best="")])
    assert lines == ["**adamw**: 30.0 [29.0, 31.0] (n = 3) steps."]


def test_a_cell_whose_tuning_is_incomplete_is_left_out_and_named():
    rows = [_row("adamw", 30.0, 1.0, (1.0, 1.0), None, (None, None), best=""),
            _row("muon", 15.0, None, (None, None), None, (None, None), best="", tuned=(2, 3)),
            _row("soap", 20.0, 1.5, (1.2, 1.8), None, (None, None), best="", k=4)]  # no soap run at K = 8
    lines = _lines(rows)
    assert lines[0].startswith("**adamw**") and len(lines) == 2
    assert lines[1] == ("Not covered here: **muon** (tuning incomplete: 2 of 3 trials); **soap** (no finished run "
                        "at K = 8).")


def test_the_lead_names_the_protocol_and_a_line_flags_unequal_tuning():
    """A plugin tuned in 17 trials against AdamW's 3 and Muon's 4: its line says so; 4 against 3 is no flag."""
    lines = headline(pd.DataFrame([_row("adamw", 30.0, 1.0, (1.0, 1.0), 0.5, (0.45, 0.55)),
                                   _row("muon", 15.0, 2.0, (1.8, 2.2), 1.0, (1.0, 1.0), tuned=(4, 4)),
                                   _row("my-plugin", 10.0, 3.0, (2.8, 3.2), 1.5, (1.4, 1.6), tuned=(17, 17))]))
    ((lead, lines),) = lines
    assert "the tightest target, under the grid protocol (a learning-rate grid at a constant rate); median" in lead
    assert lines[0].endswith("(unequal tuning: 17 trials against 3 for adamw and 4 for muon).")
    assert all("unequal" not in line for line in lines[1:])
