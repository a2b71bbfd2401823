"""The report's answer to the skeptic (benchmark/report/robustness.py, sensitivity.py, headline.py) on synthetic records
of one base setup under the grid, coordinate and wsd protocols: the robustness view is the per-setup summary pivoted
by protocol (its numbers are the summary's), its oracle-gap sentence follows GN's interval, the sensitivity figure
draws every axis trial of a coordinate walk and a line at the selected setting's steps, and the headline names the
protocol it quotes and flags unequal tuning."""

import html
import json

import matplotlib.pyplot as plt
import pandas as pd
import pytest
from figure_checks import legend_shows_what_is_drawn, tick_labels_do_not_overlap
from helpers import PROTOCOL_POINTS, SELECTED, protocol_records, synthetic_record, write_records
from test_figures import _check_axes

from benchmark.report.headline import headline
from benchmark.report.page import html_page
from benchmark.report.plotting import finish
from benchmark.report.render import failures, leaderboard_json, leaderboard_markdown, load
from benchmark.report.robustness import (
    LOST,
    SURVIVED,
    UNJUDGED,
    robustness_html,
    robustness_markdown,
    robustness_views,
    verdict_of,
)
from benchmark.report.sensitivity import fig_sensitivity, sensitivity_cells
from benchmark.report.tables import select_final, summary_table

BASE = "cpu v7 · python-stdlib"
SETUPS = {"grid": BASE, "coordinate": f"{BASE} · coordinate", "wsd": f"{BASE} · wsd"}


def _tables(tmp_path, records):
    runs, evals, _ = load(write_records(tmp_path / "R", records))
    runs = select_final(runs)
    return runs, summary_table(runs, evals)


def test_the_view_is_the_summary_pivoted_by_protocol(tmp_path):
    runs, table = _tables(tmp_path, protocol_records())
    (view,) = robustness_views(table)
    assert (view["base_setup"], view["k"], view["target"]) == (BASE, 4, 3.2)
    assert view["protocols"] == ["grid", "coordinate", "wsd"] and view["labels"] == ["adamw", "muon", "soap", "gn"]
    for entry in view["by_protocol"]:
        rows = table[(table.setup == SETUPS[entry["protocol"]]) & (table.target == 3.2)].set_index("label")
        assert entry["setup"] == SETUPS[entry["protocol"]]
        for r in entry["rows"]:
            for field in ("median_steps", "steps_ci_low", "steps_ci_high", "seeds", "tuning_trials"):
                assert r[field] == rows.loc[r["label"], field], (entry["protocol"], r["label"], field)
        for field in ("speedup_vs_adamw", "speedup_vs_adamw_ci_low", "speedup_vs_best_first_order_ci_high",
                      "speedup_vs_best_first_order_seeds"):
            assert entry["gn"][field] == rows.loc["gn", field], (entry["protocol"], field)
        assert entry["gn"]["best_first_order"] == rows.loc["gn", "best_first_order"] == "muon"
        assert entry["tuning_trials"] == rows["tuning_trials"].sum() == 4 * len(PROTOCOL_POINTS[
            None if entry["protocol"] == "grid" else entry["protocol"]])
        assert entry["tuning_fwd_equiv"] == pytest.approx(rows["tuning_fwd_equiv"].sum())
    # a WSD trial's tuning compute counts its cooldown branches (100 each, in the records)
    wsd = runs[(runs.setup == SETUPS["wsd"]) & (runs.role == "tune")]
    assert view["by_protocol"][2]["tuning_fwd_equiv"] == pytest.approx(
        sum(c["forward_equivalents"] for c in wsd["costs"]) + 100 * len(wsd))
    assert "survived every protocol here: grid (" in view["oracle_gap"]


def test_the_report_shows_the_view_in_every_format_and_only_where_protocols_differ(tmp_path):
    runs, table = _tables(tmp_path, protocol_records())
    failed, fits = failures(runs), pd.DataFrame()
    md = leaderboard_markdown(table, fits, runs, failed)
    section = md.split("## Robustness: the tuning protocols side by side")[1].split("\n## ")[0]
    assert md.index("## What was found") < md.index("## Robustness") < md.index(f"## {BASE}: steps to")
    assert "| optimizer | grid | coordinate | wsd |" in section and "| gn: speedup vs AdamW |" in section
    assert "| oracle gap | survived | survived | survived |" in section
    assert "| tuning trials, all backends | 12 (3 each) | 28 (7 each) | 20 (5 each) |" in section
    (view,) = json.loads(json.dumps(leaderboard_json(table, fits, runs, failed)))["robustness"]
    (tmp_path / "sensitivity.png").write_bytes(b"\x89PNG")
    page = html_page(table, [tmp_path / "sensitivity.png"], runs, failed, {})
    assert view["oracle_gap"] in section and html.escape(view["oracle_gap"]) in page
    assert '<section id="robustness">' in page and '<figure id="fig-sensitivity">' in page
    _, grid_only = _tables(tmp_path / "G", [r for r in protocol_records() if "protocol" not in r["run"]])
    assert robustness_views(grid_only) == [] and robustness_markdown([]) == [] and robustness_html([]) == ""


def test_the_oracle_gap_sentence_follows_gns_interval(tmp_path):
    """GN as fast as Muon under wsd, its seeds apart: its interval includes 1 and the sentence says the gap did not
    survive wsd; under the other protocols it still did."""
    _, table = _tables(tmp_path, protocol_records(gn_speedup={"wsd": 1.6}, gn_jitter=0.15))
    (view,) = robustness_views(table)
    wsd = view["by_protocol"][2]
    low, high = wsd["gn"]["speedup_vs_best_first_order_ci_low"], wsd["gn"]["speedup_vs_best_first_order_ci_high"]
    assert low <= 1 <= high and wsd["oracle_gap_verdict"] == LOST
    sentence = view["oracle_gap"]
    assert sentence.startswith("The oracle gap (full GN's steps against the best first-order method's, paired by "
                               "seed) survived grid (")
    assert " and coordinate (" in sentence and "; it did not survive wsd (" in sentence
    assert sentence.endswith(f"[{low:.2f}, {high:.2f}] (n = 3) vs muon; its interval includes 1).")


def test_verdicts_where_there_is_no_interval():
    gn = {"label": "gn", "tuning_trials": 3, "tuning_planned": 3, "best_first_order": "muon",
          **{f"speedup_vs_best_first_order{f}": None for f in ("", "_ci_low", "_ci_high", "_at_least", "_at_most")}}
    assert verdict_of(None) == (UNJUDGED, "no gn row")
    assert verdict_of({**gn, "speedup_vs_best_first_order_at_least": 2.0}) == (SURVIVED, "muon did not reach the target")
    assert verdict_of({**gn, "speedup_vs_best_first_order_at_most": 0.5}) == (LOST, "gn did not reach the target")
    assert verdict_of({**gn, "speedup_vs_best_first_order": 2.0}) == (UNJUDGED, "one seed: no interval")
    assert verdict_of({**gn, "speedup_vs_best_first_order_ci_low": 0.5, "speedup_vs_best_first_order_ci_high": 0.8})[0] == LOST
    assert verdict_of({**gn, "tuning_trials": 2}) == (UNJUDGED, "gn's tuning incomplete: 2 of 3 trials")
    assert verdict_of({**gn, "best_first_order": ""})[0] == UNJUDGED


def _gids(fig) -> dict[str, object]:
    return {str(a.get_gid()): a for a in fig.findobj() if a.get_gid()}


def test_the_sensitivity_figure_draws_every_axis_trial_and_the_selected_steps(tmp_path):
    records = protocol_records()
    runs, _ = _tables(tmp_path, records)
    fig = fig_sensitivity(runs)
    gids = _gids(fig)
    steps = {(r["run"]["optimizer"], r["run"]["hparams"]["lr"], r["run"]["hparams"]["beta2"]):
             r["run"]["steps_to_target"]["3.2"] for r in records if r["run"].get("protocol") == "coordinate"
             and r["run"]["role"] == "tune"}
    chosen = SELECTED["coordinate"]
    for optimizer in ("adamw", "muon", "soap", "gn"):
        panel = f"{optimizer}|{SETUPS['coordinate']}|4"
        drawn = {g for g in gids if g.split("|")[1:4] == panel.split("|") and g.split("|")[0] in ("dot", "censored")}
        expected = set()
        for p in PROTOCOL_POINTS["coordinate"]:
            for key in [key for key in p if all(p[j] == chosen[j] for j in p if j != key)]:  # one key moved
                reached = steps[(optimizer, p["lr"], p["beta2"])] is not None
                expected.add(f"{'dot' if reached else 'censored'}|{panel}|{key}|{p[key]:g}")
                x = gids[f"{'dot' if reached else 'censored'}|{panel}|{key}|{p[key]:g}"].get_xdata()[0]
                assert x == (steps[(optimizer, p["lr"], p["beta2"])] if reached else 30), (optimizer, p)
        assert drawn == expected and len(expected) == 6, (optimizer, drawn ^ expected)  # off-axis points left out
        line = gids[f"selected|{panel}"].get_xdata()
        assert line[0] == line[1] == steps[(optimizer, chosen["lr"], chosen["beta2"])]
    assert "censored|adamw|cpu v7 · python-stdlib · coordinate|4|lr|0.003" in gids  # lr 0.003 never got there
    _check_axes("sensitivity", fig)
    finish(fig)
    tick_labels_do_not_overlap("sensitivity", fig)
    legend_shows_what_is_drawn("sensitivity", fig)
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:  # the values' labels stay apart as laid out
        boxes = [t.get_window_extent(renderer) for t in ax.texts if str(t.get_gid()).startswith("value|")]
        assert all(not a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:]), ax.get_title()
    plt.close("all")


def test_a_hyperparameter_the_walk_never_moved_and_a_fixed_one_get_no_row(tmp_path):
    """A Phase II cell re-sweeps the learning rate only; a setting fixed with --set is not searched."""
    records = [synthetic_record("adamw", 4, 0, lr, role="tune", protocol="coordinate", rate=0.1 * f,
                                overrides={"beta2": 0.95, "warmup": 5}, run_fields={"fixed": ["warmup"]})
               for lr, f in ((0.003, 0.5), (0.01, 1.0), (0.03, 0.8))]
    runs, _ = _tables(tmp_path, records)
    (cell,) = sensitivity_cells(runs)
    assert cell["keys"] == ["lr"] and [v for v, _, _ in cell["axes"]["lr"]] == [0.003, 0.01, 0.03]
    assert cell["selected"] == {"lr": 0.01, "beta2": 0.95, "warmup": 5}


def test_the_sensitivity_figure_without_coordinate_records_says_so(tmp_path):
    runs, _ = _tables(tmp_path, [r for r in protocol_records() if r["run"].get("protocol") != "coordinate"])
    fig = fig_sensitivity(runs)
    assert "no coordinate-tuned records here" in " ".join(t.get_text() for t in fig.axes[0].texts)
    _check_axes("sensitivity", fig)
    plt.close("all")


def test_the_headline_quotes_the_most_thoroughly_tuned_protocol_and_names_it(tmp_path):
    records = protocol_records()
    for kept, quoted in ((("coordinate", "wsd"), "wsd"), (("coordinate",), "coordinate"), ((), "grid")):
        _, table = _tables(tmp_path / quoted, [r for r in records if r["run"].get("protocol") in (None, *kept)])
        ((lead, lines),) = headline(table)
        assert lead.startswith(f"{SETUPS[quoted]}: steps to validation loss 3.2 at K = 4") and f"under the {quoted} protocol (" in lead
        protocols = ["grid", *kept]
        assert (f"the most thoroughly tuned of the {len(protocols)} protocols these records hold for this setup "
                f"({', '.join(protocols)}: the robustness view sets them side by side)" in lead) == bool(kept)
        assert lines[0].startswith("**gn**") and not any("unequal tuning" in line for line in lines)


def test_the_headline_flags_a_comparison_of_unequal_tuning(tmp_path):
    """A plugin tuned over 17 settings against AdamW's 3 and Muon's 4 (the best first-order method): its line says
    so; Muon's 4 against AdamW's 3 is no flag."""
    lrs = [round(0.001 * 1.3 ** i, 6) for i in range(17)]
    records = [synthetic_record("my-plugin", 4, 0, lr, role="tune", rate=0.15, family="first-order") for lr in lrs]
    records += [synthetic_record("adamw", 4, 0, lr, role="tune", rate=0.1) for lr in (0.003, 0.01, 0.03)]
    records += [synthetic_record("muon", 4, 0, lr, role="tune", rate=0.2) for lr in (0.003, 0.01, 0.03, 0.1)]
    _, table = _tables(tmp_path, records)
    ((_, lines),) = headline(table)
    plugin = next(line for line in lines if line.startswith("**my-plugin**"))
    assert plugin.endswith("; unequal tuning: 17 trials against 3 for adamw and 4 for muon).")
    assert [line.split("**")[1] for line in lines if "unequal tuning" in line] == ["my-plugin"]
