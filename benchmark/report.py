"""``bench report``: a pure function of the run records. The same records always give byte-identical
tables: the leaderboard (Markdown and JSON), the summary and batch-size fits (CSV), the figures and an
HTML page that holds them all."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pandas as pd

from benchmark import BenchError
from benchmark.figures import render_figures
from benchmark.files import atomic_write
from benchmark.page import html_page
from benchmark.store import ResultsStore, frames
from benchmark.tables import batch_fits, fmt, nan_none, provenance, select_final, summary_table

LEADERBOARD_SCHEMA = {"schema": "optbench-leaderboard", "version": 1}


def _leaderboard_row(r) -> str:
    steps = fmt(r.median_steps)
    if r.steps_ci_low is not None and not pd.isna(r.steps_ci_low):
        steps += f" [{fmt(r.steps_ci_low)}, {fmt(r.steps_ci_high)}]"
    sp = fmt(r.speedup_vs_adamw, "{:.2f}×")
    if r.speedup_ci_low is not None and not pd.isna(r.speedup_ci_low):
        sp += f" [{fmt(r.speedup_ci_low, '{:.2f}')}, {fmt(r.speedup_ci_high, '{:.2f}')}]"
        sp += " *" if r.speedup_excludes_1 else ""
    setting = r.setting + (" (grid edge)" if getattr(r, "at_edge", False) else "")
    tuned = getattr(r, "tuning_trials", None)
    return (f"| {r.k} | {r.tokens_per_step} | {r.optimizer} | {setting} | {fmt(tuned, '{:.0f}')} | {steps} | "
            f"{fmt(r.bracket, '{:g}')} | {sp} | {fmt(r.median_fwd_equiv, '{:.0f}')} | "
            f"{fmt(r.compute_speedup_vs_adamw, '{:.2f}×')} | {fmt(r.median_seconds, '{:.1f}')} | "
            f"{r.reached} / {r.censored} / {r.diverged} |")


def leaderboard_markdown(table: pd.DataFrame, fits: pd.DataFrame, runs: pd.DataFrame) -> str:
    lines = ["# optbench leaderboard", ""]
    for (workload, target), part in table.groupby(["workload", "target"], sort=False):
        lines += [f"## {workload}: steps to validation loss {target:g}", "",
                  "| K | tokens/step | optimizer | setting | tuning trials | median steps [95% CI] | bracket "
                  "| speedup vs AdamW [95% CI] | compute to target (fwd-equiv) | compute speedup "
                  "| time to target (s) | reached / censored / diverged |",
                  "|---:|---:|---|---|---:|---|---:|---|---:|---:|---:|---|"]
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
        "(a bound of ∞ means too many resamples were censored); a median is censored (—) when more than half "
        "the runs never reached the target, and then no speedup is given. Speedup intervals resample seeds "
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
    return runs, evals, skipped


def render(results: Path, out: Path) -> list[Path]:
    """Every report file from the records under ``results``, into ``out``; the paths written."""
    runs, evals, skipped = load(results)
    if skipped:
        warnings.warn("skipped records: " + ", ".join(f"{n} {why}" for why, n in sorted(skipped.items())),
                      stacklevel=2)
    runs = select_final(runs)
    table = summary_table(runs, evals)
    fits = batch_fits(runs, evals)
    out.mkdir(parents=True, exist_ok=True)
    figures = render_figures(runs, evals, table, fits, out)
    md = leaderboard_markdown(table, fits, runs)
    texts = {"leaderboard.md": md,
             "summary.csv": table.to_csv(index=False, float_format="%.6g"),
             "batch_fits.csv": fits.to_csv(index=False, float_format="%.6g"),
             "leaderboard.json": json.dumps(leaderboard_json(table, fits, runs), indent=1, sort_keys=True),
             "index.html": html_page(md, table, figures, runs, skipped)}
    for name, text in texts.items():
        atomic_write(out / name, text)
    return [*(out / name for name in texts), *figures]
