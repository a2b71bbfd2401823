"""``bench report``: a pure function of the run records. The same records always give byte-identical
tables: the leaderboard (Markdown and JSON), the summary and batch-size fits (CSV), the figures and an
HTML page that holds them all."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pandas as pd

from benchmark import BenchError
from benchmark.batchfit import batch_fits
from benchmark.figures import render_figures
from benchmark.files import atomic_write
from benchmark.headline import headline, headline_markdown, ratio_text, steps_text
from benchmark.page import html_page
from benchmark.store import ResultsStore, frames, skipped_line
from benchmark.tables import fmt, nan_none, provenance, select_final, summary_table
from optimizers.registry import registry

LEADERBOARD_SCHEMA = {"schema": "optbench-leaderboard", "version": 1}


def _leaderboard_row(r) -> str:
    steps = steps_text(r.median_steps, r.steps_ci_low, r.steps_ci_high, r.budget, r.bracket)
    sp = ratio_text(r.speedup_vs_adamw, r.speedup_vs_adamw_ci_low, r.speedup_vs_adamw_ci_high)
    sp += " *" if r.speedup_excludes_1 else ""
    fo = ratio_text(r.speedup_vs_best_first_order, r.speedup_vs_best_first_order_ci_low,
                    r.speedup_vs_best_first_order_ci_high)
    fo += f" ({r.best_first_order})" if r.best_first_order and fo != "—" else ""
    gap = ratio_text(r.oracle_gap, r.oracle_gap_ci_low, r.oracle_gap_ci_high)
    setting = r.setting + (" (grid edge)" if r.at_edge else "")
    return (f"| {r.k} | {r.tokens_per_step} | {r.optimizer} | {setting} | {fmt(r.tuning_trials, '{:.0f}')} | {steps} | "
            f"{fmt(r.bracket, '{:g}')} | {sp} | {fo} | {gap} | {fmt(r.median_fwd_equiv, '{:,.0f}')} | "
            f"{fmt(r.compute_speedup_vs_adamw, '{:.2f}×')} | {fmt(r.median_seconds, '{:.1f}')} | "
            f"{r.reached} / {r.censored} / {r.diverged} | {r.provenance} |")


def leaderboard_markdown(table: pd.DataFrame, fits: pd.DataFrame, runs: pd.DataFrame) -> str:
    lines = ["# optbench leaderboard", "", *headline_markdown(table)]
    for (workload, target), part in table.groupby(["workload", "target"], sort=False):
        lines += [f"## {workload}: steps to validation loss {target:g}", "",
                  "| K | tokens/step | optimizer | setting | tuning trials | median steps [95% CI] | bracket "
                  "| speedup vs AdamW [95% CI] | speedup vs best first-order [95% CI] | steps ÷ full GN's [95% CI] "
                  "| compute to target (fwd-equiv) | compute speedup | time to target (s) "
                  "| reached / censored / diverged | from (host · device · code) |",
                  "|---:|---:|---|---|---:|---|---:|---|---|---|---:|---:|---:|---|---|"]
        lines += [_leaderboard_row(r) for r in part.itertuples()]
        lines.append("")
    if not fits.empty:
        lines += ["## Critical batch size: S(B) = S_min (1 + B_noise / B)", "",
                  "| workload | target | optimizer | S_min | B_noise (tokens) [95% CI] | R² | RMS relative residual "
                  "| batch sizes |", "|---|---:|---|---:|---|---:|---:|---:|"]
        for r in fits.itertuples():
            if not r.follows_model:
                lines.append(f"| {r.workload} | {r.target:g} | {r.optimizer} | — | does not follow S(B) | "
                             f"{fmt(r.r2, '{:.3f}')} | {fmt(r.rms_rel_residual, '{:.3f}')} | {r.points} |")
                continue
            interval = "" if r.b_noise_ci_low is None or pd.isna(r.b_noise_ci_low) else (
                f" [{r.b_noise_ci_low:,.0f}, {r.b_noise_ci_high:,.0f}]")
            lines.append(f"| {r.workload} | {r.target:g} | {r.optimizer} | {r.s_min:.1f} | {r.b_noise:,.0f}{interval} "
                         f"| {fmt(r.r2, '{:.3f}')} | {fmt(r.rms_rel_residual, '{:.3f}')} | {r.points} |")
        lines.append("")
    lines += [
        "Median over seeds of each cell's selected setting; intervals are percentile bootstraps (2000 "
        "resamples, fixed seed) in which runs that never reached the target count as infinitely many steps "
        "(a bound ≥ budget means too many resamples were censored); a median is censored (≥ budget) when more "
        "than half the runs never reached the target within the step budget, and then no speedup is given. "
        "The best first-order method is the one with the fewest median steps among the first-order backends "
        "of the same K and target (named beside each speedup over it); steps ÷ full GN's is the gap to the "
        "Gauss-Newton oracle. Speedup intervals resample seeds "
        "jointly for both optimizers (runs of one seed share their warm start and data order); * marks an "
        "interval that excludes 1. The bracket is the widest gap, over the cell's runs, between the two "
        "evaluations around the crossing. Tuning trials count each cell's settings tried: its grid, "
        "extended by the grid's own spacing (at most two points a side) while the best sat at an edge; "
        "(grid edge) flags a selected setting still at an edge of what was tried. R² needs three batch sizes or more; below R² 0.9 a fit is not quoted. B_noise intervals resample seeds jointly across batch sizes. Compute counts forward-equivalent "
        "micro-batch passes "
        "(forward 1, backward 2, JVP 2), line searches included.", "",
        "Provenance: " + provenance(runs), "",
    ]
    return "\n".join(lines)


def leaderboard_json(table: pd.DataFrame, fits: pd.DataFrame, runs: pd.DataFrame) -> dict:
    def clean(records):
        return [{k: nan_none(v) for k, v in r.items()} for r in records]

    return {
        **LEADERBOARD_SCHEMA,
        "headline": [{"scene": lead, "findings": lines} for lead, lines in headline(table)],
        "entries": clean(table.to_dict("records")),
        "batch_fits": clean(fits.to_dict("records")) if not fits.empty else [],
        "runs": sorted(runs["run_id"]),
        "provenance": {"code_versions": sorted(set(runs["code_version"])),
                       "corpora": sorted({c.get("name", "?") for c in runs["corpus"]}),
                       "devices": sorted({f"{d.get('type')}:{d.get('name')}" for d in runs["device"]})},
    }


def load(results: Path) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """(runs, evals, skipped counts) of a results folder, each run's ``workload`` naming its whole setup."""
    store = ResultsStore(results)
    if not store.runs_dir.exists():
        raise BenchError(f"no run records under {str(results)!r} (expected {str(store.runs_dir)!r})")
    records, skipped = store.records()
    runs, evals = frames(records)
    if runs.empty:
        raise BenchError(f"no readable run records under {str(store.runs_dir)!r}")

    # A cell never pools different workload versions, corpora or numerics: they name the setup.
    def setup(r) -> str:
        corpus = (r.get("corpus") or {}).get("name", "?")
        numerics = r.get("numerics")  # absent (NaN) in records older than the field
        return f"{r['workload']} v{r['workload_version']} · {corpus}" + (
            f" · {numerics}" if isinstance(numerics, str) and numerics else "")

    runs["workload"] = [setup(r) for r in runs.to_dict("records")]
    runs["optimizer_family"] = [_family(r) for r in runs.to_dict("records")]
    return runs, evals, skipped


def _family(run: dict) -> str:
    """What the record says of its optimizer's family; for records older than the field, what the installed
    backend of that name says; "unknown" for a backend not installed here."""
    family = run.get("optimizer_family")
    if isinstance(family, str):
        return family
    backend = registry().get(run["backend"])
    return backend.family if backend is not None else "unknown"


def render(results: Path, out: Path) -> list[Path]:
    """Every report file from the records under ``results``, into ``out``; the paths written."""
    runs, evals, skipped = load(results)
    if skipped:
        warnings.warn(skipped_line(skipped), stacklevel=2)
    runs = select_final(runs)
    table = summary_table(runs, evals)
    if table.empty:
        raise BenchError(f"the records under {str(results)!r} name no targets: nothing to report")
    fits = batch_fits(runs, evals)
    out.mkdir(parents=True, exist_ok=True)
    figures = render_figures(runs, evals, table, fits, out)
    md = leaderboard_markdown(table, fits, runs)
    texts = {"leaderboard.md": md,
             "summary.csv": table.to_csv(index=False, float_format="%.6g"),
             "batch_fits.csv": fits.to_csv(index=False, float_format="%.6g"),
             "leaderboard.json": json.dumps(leaderboard_json(table, fits, runs), indent=1, sort_keys=True),
             "index.html": html_page(table, figures, runs, skipped)}
    for name, text in texts.items():
        atomic_write(out / name, text)
    return [*(out / name for name in texts), *figures]
