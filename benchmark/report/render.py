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
from benchmark.report.batchfit import batch_fits
from benchmark.report.figures import render_figures
from benchmark.report.headline import (
    failed_count,
    gap_cell,
    headline,
    headline_markdown,
    setting_cell,
    speedup_cell,
    steps_cell,
    tuning_cell,
    vs_best_cell,
)
from benchmark.report.page import html_page
from benchmark.report.statistics import CENSORED_MEDIAN_RULE
from benchmark.report.tables import (
    failed_runs,
    fmt,
    hp_label,
    nan_none,
    optimizer_rank,
    provenance,
    select_final,
    summary_table,
)
from benchmark.results.store import ResultsStore, frames, skipped_line
from optimizers.registry import registry

LEADERBOARD_SCHEMA = {"schema": "optbench-leaderboard", "version": 1}


def failures(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per failed trial, apart from divergences: where (workload, optimizer, K, setting, seed, role),
    at which step, what was raised (type and message) and where its traceback is (``log``, relative to the
    results folder), in the order of the tables."""
    rows = []
    for r in runs[failed_runs(runs)].to_dict("records"):
        failure = r.get("failure") if isinstance(r.get("failure"), dict) else {}
        rows.append({"workload": r["workload"], "optimizer": r["optimizer"], "k": int(r["k"]),
                     "setting": hp_label(r["hparam_overrides"]), "seed": int(r["seed"]), "role": r["role"],
                     "step": failure.get("step"), "type": failure.get("type", "?"),
                     "message": failure.get("message", ""), "log": failure.get("log"), "run_id": r["run_id"]})
    rows.sort(key=lambda r: (r["workload"], r["k"], optimizer_rank(r["optimizer"]), r["seed"], r["run_id"]))
    return pd.DataFrame(rows, columns=["workload", "optimizer", "k", "setting", "seed", "role", "step", "type",
                                       "message", "log", "run_id"])


def _leaderboard_row(r: dict) -> str:
    return (f"| {r['k']} | {r['tokens_per_step']} | {r['optimizer']} | {setting_cell(r)} | {tuning_cell(r)} | "
            f"{steps_cell(r)} | {fmt(r['bracket'], '{:g}')} | {speedup_cell(r)} | {vs_best_cell(r)} | {gap_cell(r)} | "
            f"{fmt(r['median_fwd_equiv'], '{:,.0f}')} | {fmt(r['compute_speedup_vs_adamw'], '{:.2f}×')} | "
            f"{fmt(r['median_seconds'], '{:.1f}')} | {r['reached']} / {r['censored']} / {r['diverged']} | "
            f"{r['provenance']} |")


def _fit_row(r: dict) -> str:
    quality = f"{fmt(r['r2'], '{:.3f}')} | {fmt(r['rms_rel_residual'], '{:.3f}')} | {r['points']} |"
    if not r["follows_model"]:
        return f"| {r['workload']} | {r['target']:g} | {r['optimizer']} | — | no fit: {r['why']} | {quality}"
    interval = "" if nan_none(r["b_noise_ci_low"]) is None else (
        f" [{r['b_noise_ci_low']:,.0f}, {r['b_noise_ci_high']:,.0f}]")
    seeds = f" (n = {int(r['seeds'])})" if nan_none(r["seeds"]) is not None else ""
    return (f"| {r['workload']} | {r['target']:g} | {r['optimizer']} | {r['s_min']:.1f} | "
            f"{r['b_noise']:,.0f}{interval}{seeds} | {quality}")


def _failure_row(r: dict) -> str:
    step = "—" if nan_none(r["step"]) is None else f"{int(r['step'])}"
    message = str(r["message"]).replace("|", "\\|").replace("\n", " ")
    return (f"| {r['workload']} | {r['optimizer']} | {r['k']} | {r['setting']} | {r['seed']} | {r['role']} | "
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
    "Median over seeds of each cell's selected setting; intervals are percentile bootstraps (2000 "
    "resamples, fixed seed) in which runs that never reached the target count as infinitely many steps "
    "(a bound ≥ budget means too many resamples were censored), and n is the number of seeds an interval "
    "rests on (its paired seeds, for a ratio); one seed gives a value and no interval. A median is censored "
    f"(≥ budget) when {CENSORED_MEDIAN_RULE}, and then no speedup is given: where one side of a ratio is "
    "censored, ≥ or ≤ gives the bound the budget sets. The best first-order method is the one with the "
    "fewest median steps among the first-order backends of the same K and target (named beside each "
    "speedup over it; there is none with fewer than two); steps ÷ full GN's is the gap to the "
    "Gauss-Newton oracle. Speedup intervals resample seeds jointly for both optimizers (runs of one seed "
    "share their warm start and data order); * marks an interval that excludes 1. The bracket is the "
    "widest gap, over the cell's runs, between the two evaluations around the crossing. Tuning trials count "
    "each cell's settings tried: its grid, extended by the grid's own spacing (at most two points a side) "
    "while the best sat at an edge; (grid edge) flags a selected setting still at an edge of what was "
    "tried; (tuning incomplete: 2 of 3 trials) a cell some of whose planned tuning trials have no record "
    "here, or only a failed one: its row is provisional, no speedup is taken over it and the headline "
    "leaves it out. R² needs three batch sizes or more; below R² 0.9 a fit is not quoted. B_noise intervals "
    "resample seeds jointly across batch sizes. Compute counts forward-equivalent micro-batch passes "
    "(forward 1, backward 2, JVP 2), line searches included."
)


def leaderboard_markdown(table: pd.DataFrame, fits: pd.DataFrame, runs: pd.DataFrame, failed: pd.DataFrame) -> str:
    lines = ["# optbench leaderboard", "", *headline_markdown(table)]
    for (workload, target), part in table.groupby(["workload", "target"], sort=False):
        lines += [f"## {workload}: steps to validation loss {target:g}", "",
                  "| K | tokens/step | optimizer | setting | tuning trials | median steps [95% CI] | bracket "
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
    def clean(records):
        return [{k: nan_none(v) for k, v in r.items()} for r in records]

    return {
        **LEADERBOARD_SCHEMA,
        "headline": [{"scene": lead, "findings": lines} for lead, lines in headline(table)],
        "entries": clean(table.to_dict("records")),
        "batch_fits": clean(fits.to_dict("records")) if not fits.empty else [],
        "failures": clean(failed.to_dict("records")),
        "runs": sorted([*runs["run_id"], *failed["run_id"]]),
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
