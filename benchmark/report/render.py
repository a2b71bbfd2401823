"""``bench report``: a pure function of the run records. The same records always give byte-identical
tables: the leaderboard (Markdown and JSON), the summary and batch-size fits (CSV), the figures and an
HTML page that holds them all."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pandas as pd

from benchmark import BenchError
from benchmark.files import atomic_write
from benchmark.report.batchfit import MIN_R2, batch_fits
from benchmark.report.figures import render_figures
from benchmark.report.frames import load
from benchmark.report.headline import (
    failed_count,
    fmt,
    gap_cell,
    headline,
    headline_markdown,
    setting_cell,
    speedup_cell,
    steps_cell,
    tuning_cell,
    vs_best_cell,
)
from benchmark.report.missing import clean, is_missing
from benchmark.report.page import html_page
from benchmark.report.robustness import robustness_markdown, robustness_views
from benchmark.report.statistics import CENSORED_MEDIAN_RULE, LEVEL, RESAMPLES
from benchmark.report.tables import (
    failed_runs,
    hp_label,
    optimizer_rank,
    provenance,
    select_final,
    summary_table,
)
from benchmark.results.store import skipped_line
from optimizers.interface import PASS_WEIGHTS

# version 2: the report's own columns (setup, label) beside the stored workload and optimizer
LEADERBOARD_SCHEMA = {"schema": "optbench-leaderboard", "version": 2}
FAILURE_COLUMNS = ["setup", "workload", "label", "optimizer", "k", "setting", "seed", "role", "step", "type",
                   "message", "log", "run_id"]


def failures(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per failed trial, apart from divergences: where (setup, label, K, setting, seed, role), at
    which step, what was raised (type and message) and where its traceback is (``log``, relative to the
    results folder), in the order of the tables."""
    rows = []
    for r in runs[failed_runs(runs)].to_dict("records"):
        failure = r.get("failure") if isinstance(r.get("failure"), dict) else {}
        rows.append({**{c: r[c] for c in ("setup", "workload", "label", "optimizer")}, "k": int(r["k"]),
                     "setting": hp_label(r["setting"]), "seed": int(r["seed"]), "role": r["role"],
                     "step": failure.get("step"), "type": failure.get("type", "?"),
                     "message": failure.get("message", ""), "log": failure.get("log"), "run_id": r["run_id"]})
    rows.sort(key=lambda r: (r["setup"], r["k"], optimizer_rank(r["label"]), r["seed"], r["run_id"]))
    return pd.DataFrame(rows, columns=FAILURE_COLUMNS)


def _leaderboard_row(r: dict) -> str:
    return (f"| {r['k']} | {r['tokens_per_step']} | {r['label']} | {setting_cell(r)} | {tuning_cell(r)} | "
            f"{steps_cell(r)} | {fmt(r['bracket'], '{:g}')} | {speedup_cell(r)} | {vs_best_cell(r)} | {gap_cell(r)} | "
            f"{fmt(r['median_fwd_equiv'], '{:,.0f}')} | {fmt(r['compute_speedup_vs_adamw'], '{:.2f}×')} | "
            f"{fmt(r['median_seconds'], '{:.1f}')} | {r['reached']} / {r['censored']} / {r['diverged']} | "
            f"{r['provenance']} |")


def _fit_row(r: dict) -> str:
    quality = f"{fmt(r['r2'], '{:.3f}')} | {fmt(r['rms_rel_residual'], '{:.3f}')} | {r['points']} |"
    if not r["follows_model"]:
        return f"| {r['setup']} | {r['target']:g} | {r['label']} | — | no fit: {r['why']} | {quality}"
    interval = "" if is_missing(r["b_noise_ci_low"]) else (
        f" [{r['b_noise_ci_low']:,.0f}, {r['b_noise_ci_high']:,.0f}]")
    seeds = f" (n = {int(r['seeds'])})" if not is_missing(r["seeds"]) else ""
    return (f"| {r['setup']} | {r['target']:g} | {r['label']} | {r['s_min']:.1f} | "
            f"{r['b_noise']:,.0f}{interval}{seeds} | {quality}")


def _failure_row(r: dict) -> str:
    step = "—" if is_missing(r["step"]) else f"{int(r['step'])}"
    message = str(r["message"]).replace("|", "\\|").replace("\n", " ")
    return (f"| {r['setup']} | {r['label']} | {r['k']} | {r['setting']} | {r['seed']} | {r['role']} | "
            f"{step} | {r['type']} | {message} | {r['log'] or '—'} |")


def failures_markdown(failed: pd.DataFrame) -> list[str]:
    """The failed trials' section (none without failures)."""
    if failed.empty:
        return []
    return ["## Failed trials", "",
            f"{failed_count(failed)} raised an error. A failed trial counts in no table, figure or headline "
            "above (a diverged run is no failure: it counts in its cell); its traceback is in its log, under the "
            "results folder, and the next `bench run` runs it again.", "",
            "| workload | optimizer | K | setting | seed | role | step | error | message | log |",
            "|---|---|---:|---|---:|---|---:|---|---|---|",
            *(_failure_row(r) for r in failed.to_dict("records")), ""]


NOTES = (
    f"Median over seeds of each cell's selected setting; intervals are {LEVEL:.0%} percentile bootstraps "
    f"({RESAMPLES} resamples, fixed seed) in which runs that never reached the target count as infinitely many steps "
    "(a bound ≥ budget means too many resamples were censored), and n is the number of seeds an interval "
    "rests on (its paired seeds, for a ratio); one seed gives a value and no interval. A median is censored "
    f"(≥ budget) when {CENSORED_MEDIAN_RULE}, and then no speedup is given: where one side of a ratio is "
    "censored, ≥ or ≤ gives the bound the budget sets. The best first-order method is the one with the "
    "fewest median steps among the first-order backends of the same K and target (named beside each "
    "speedup over it; there is none with fewer than two); steps ÷ full GN's is the gap to the "
    "Gauss-Newton oracle. Speedup intervals resample seeds jointly for both optimizers (runs of one seed "
    "share their warm start and data order); * marks an interval that excludes 1. The bracket is the "
    "widest gap, over the cell's runs, between the two evaluations around the crossing. Tuning trials count "
    "each cell's settings tried: its grid, extended by the grid's own spacing (a few points a side at most, "
    "inside each setting's valid range) while the best sat at an edge; (grid edge) flags a selected setting still at an edge of what was "
    "tried; (tuning incomplete: 2 of 3 trials) a cell some of whose planned tuning trials have no record "
    "here, or only a failed one: its row is provisional, no speedup is taken over it and the headline "
    f"leaves it out. R² needs three batch sizes or more; below R² {MIN_R2:g} a fit is not quoted. B_noise "
    "intervals resample seeds jointly across batch sizes. Compute counts forward-equivalent micro-batch "
    f"passes ({', '.join(f'{k} {w:g}' for k, w in PASS_WEIGHTS.items())}), line searches included."
)


def leaderboard_markdown(table: pd.DataFrame, fits: pd.DataFrame, runs: pd.DataFrame, failed: pd.DataFrame) -> str:
    lines = ["# optbench leaderboard", "", *headline_markdown(table), *robustness_markdown(robustness_views(table))]
    for (setup, target), part in table.groupby(["setup", "target"], sort=False):
        lines += [f"## {setup}: steps to validation loss {target:g}", "",
                  "| K | tokens/step | optimizer | setting | tuning trials (compute) | median steps [95% CI] | bracket "
                  "| speedup vs AdamW [95% CI] | speedup vs best first-order [95% CI] | steps ÷ full GN's [95% CI] "
                  "| compute to target (fwd-equiv) | compute speedup | time to target (s) "
                  "| reached / censored / diverged | from (host · device · code) |",
                  "|---:|---:|---|---|---:|---|---:|---|---|---|---:|---:|---:|---|---|"]
        lines += [_leaderboard_row(r) for r in part.to_dict("records")]
        lines.append("")
    if not fits.empty:
        lines += ["## Critical batch size: S(B) = S_min (1 + B_noise / B)", "",
                  "| workload | target | optimizer | S_min | B_noise (tokens) [95% CI] | R² | RMS relative residual "
                  "| batch sizes |", "|---|---:|---|---:|---|---:|---:|---:|"]
        lines += [_fit_row(r) for r in fits.to_dict("records")]
        lines.append("")
    lines += [*failures_markdown(failed), NOTES, "", "Provenance: " + provenance(runs), ""]
    return "\n".join(lines)


def leaderboard_json(table: pd.DataFrame, fits: pd.DataFrame, runs: pd.DataFrame, failed: pd.DataFrame) -> dict:
    def cleaned(records):
        return [{k: clean(v) for k, v in r.items()} for r in records]

    return {
        **LEADERBOARD_SCHEMA,
        "headline": [{"scene": lead, "findings": lines} for lead, lines in headline(table)],
        "entries": cleaned(table.to_dict("records")),
        "robustness": robustness_views(table),
        "batch_fits": cleaned(fits.to_dict("records")) if not fits.empty else [],
        "failures": cleaned(failed.to_dict("records")),
        "runs": sorted([*runs["run_id"], *failed["run_id"]]),
        "provenance": {"code_versions": sorted(set(runs["code_version"])),
                       "corpora": sorted({c.get("name", "?") for c in runs["corpus"]}),
                       "devices": sorted({f"{d.get('type')}:{d.get('name')}" for d in runs["device"]})},
    }


def render(results: Path, out: Path) -> list[Path]:
    """Every report file from the records under ``results``, into ``out``; the paths written."""
    runs, evals, skipped = load(results)
    if skipped:
        warnings.warn(skipped_line(skipped), stacklevel=2)
    failed = failures(runs)
    runs = select_final(runs)
    table = summary_table(runs, evals)
    if table.empty:
        because = f" ({len(failed)} of its records are failed trials)" if len(failed) else ""
        raise BenchError(f"the records under {str(results)!r} name no targets{because}: nothing to report")
    fits = batch_fits(runs, evals)
    out.mkdir(parents=True, exist_ok=True)
    figures = render_figures(runs, evals, table, fits, out)
    texts = {"leaderboard.md": leaderboard_markdown(table, fits, runs, failed),
             "summary.csv": table.to_csv(index=False, float_format="%.6g"),
             "batch_fits.csv": fits.to_csv(index=False, float_format="%.6g"),
             "leaderboard.json": json.dumps(leaderboard_json(table, fits, runs, failed), indent=1, sort_keys=True),
             "index.html": html_page(table, figures, runs, failed, skipped)}
    for name, text in texts.items():
        atomic_write(out / name, text)
    return [*(out / name for name in texts), *figures]
