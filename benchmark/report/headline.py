"""What was found, in words generated from the numbers: per setup, at its largest K and its tightest
target, each backend's steps with their interval and its speedups over AdamW and over the best first-order
method, flagged where an interval includes 1 or a tuning optimum sits at a grid edge; a cell whose tuning
is incomplete is left out and named, with any backend that has no finished run there. Both the page and
``leaderboard.md`` open with it; cell values are formatted here for both, each interval with the number of
seeds it rests on (one seed: the value and ``n = 1``, no interval)."""

from __future__ import annotations

import math

import pandas as pd

from benchmark.report.missing import as_inf, clean, is_missing
from benchmark.report.tables import ordered, tuning_complete


def _noted(text: str, *notes: str) -> str:
    notes = tuple(n for n in notes if n)
    return f"{text} ({', '.join(notes)})" if notes else text


def fmt(v, spec="{:.1f}") -> str:
    """A number in ``spec``; "—" where there is none, "∞" where it is infinite."""
    if is_missing(v):
        return "—"
    return "∞" if isinstance(v, float) and math.isinf(v) else spec.format(v)


def _seeds(n) -> str:
    n = clean(n)
    return "" if n is None else f"n = {int(n)}"


def steps_text(median, lo=None, hi=None, budget=None, bracket=None, seeds=None) -> str:
    """Steps to a target rounded to what the evaluation grid resolves, '≥ budget' where censored, and the
    seeds it rests on."""
    median, lo, hi, budget = (clean(v) for v in (median, lo, hi, budget))
    if median is None:
        return _noted(f"≥ {budget:.0f}" if budget is not None else "never reached", "censored", _seeds(seeds))
    bracket = clean(bracket)
    spec = "{:.1f}" if median < 100 and (bracket is None or bracket <= 1 or median < 10) else "{:,.0f}"

    def bound(v) -> str:
        if math.isinf(v):
            return f"≥{budget:.0f}" if budget is not None else "∞"
        return spec.format(v)

    interval = f" [{bound(lo)}, {bound(hi)}]" if lo is not None and hi is not None else ""
    return _noted(spec.format(median) + interval, _seeds(seeds))


def _times(v) -> str:
    return "∞" if math.isinf(v) else (f"{v:.2f}" if v < 10 else f"{v:.1f}")


def ratio_text(point, lo=None, hi=None, seeds=None, at_least=None, at_most=None) -> str:
    """A ratio with its interval and the seeds it rests on; where one side's median is censored, the bound
    the budget sets ('≥ 2.40×', '≤ 0.45×'); '—' where there is neither."""
    point, lo, hi, at_least, at_most = (clean(v) for v in (point, lo, hi, at_least, at_most))
    if point is None:
        return f"≥ {_times(at_least)}×" if at_least is not None else (
            f"≤ {_times(at_most)}×" if at_most is not None else "—")
    interval = f" [{_times(lo)}, {_times(hi)}]" if lo is not None and hi is not None else ""
    return _noted(f"{_times(point)}×{interval}", _seeds(seeds))


def _ratio_of(r: dict, prefix: str) -> str:
    return ratio_text(r[prefix], r[f"{prefix}_ci_low"], r[f"{prefix}_ci_high"], r[f"{prefix}_seeds"],
                      r[f"{prefix}_at_least"], r[f"{prefix}_at_most"])


def failed_count(failed: pd.DataFrame) -> str:
    """'1 trial', '3 trials': how many ``failures`` lists."""
    return f"{len(failed)} trial{'s' if len(failed) != 1 else ''}"


def tuning_text(r: dict) -> str:
    """'' for a cell whose tuning is complete, else how far it got."""
    if tuning_complete(r):
        return ""
    return f"tuning incomplete: {int(r['tuning_trials'])} of {int(r['tuning_planned'])} trials"


# ------------------------------------------------------------------------ the cells of the tables

def steps_cell(r: dict) -> str:
    return steps_text(r["median_steps"], r["steps_ci_low"], r["steps_ci_high"], r["budget"], r["bracket"],
                      r["seeds"])


def speedup_cell(r: dict) -> str:
    """The speedup over AdamW; * where its interval excludes 1."""
    return _ratio_of(r, "speedup_vs_adamw") + (" *" if r["speedup_excludes_1"] else "")


def vs_best_cell(r: dict) -> str:
    text = _ratio_of(r, "speedup_vs_best_first_order")
    return text + (f" ({r['best_first_order']})" if r["best_first_order"] and text != "—" else "")


def gap_cell(r: dict) -> str:
    return _ratio_of(r, "oracle_gap")


def setting_cell(r: dict) -> str:
    return _noted(r["setting"], "grid edge" if r["at_edge"] else "", tuning_text(r))


def tuning_cell(r: dict) -> str:
    trials = f"{int(r['tuning_trials'])}"
    trials = trials if tuning_complete(r) else f"{trials} of {int(r['tuning_planned'])}"
    compute = r.get("tuning_fwd_equiv")
    return trials if is_missing(compute) or not r["tuning_trials"] else f"{trials} ({compute:,.0f})"


# ------------------------------------------------------------------------ the headline

def includes_1(lo, hi) -> bool:
    lo, hi = clean(lo), clean(hi)
    return lo is not None and hi is not None and lo <= 1 <= hi


def _line(r: dict) -> str:
    opt = r["label"]
    if is_missing(r["median_steps"]):
        at_most = clean(r["speedup_vs_adamw_at_most"])
        bound = f"; its speedup vs AdamW is at most {_times(at_most)}×" if at_most is not None else ""
        return f"**{opt}** did not reach it within the budget: {steps_cell(r)}{bound}."
    parts = [f"**{opt}**: {steps_cell(r)} steps"]
    flags = []
    if opt != "adamw" and not is_missing(r["speedup_vs_adamw_at_least"]):
        parts.append(f"at least {_times(r['speedup_vs_adamw_at_least'])}× vs AdamW (AdamW did not reach it)")
    elif opt != "adamw" and not is_missing(r["speedup_vs_adamw"]):
        parts.append(f"{_ratio_of(r, 'speedup_vs_adamw')} vs AdamW")
        if includes_1(r["speedup_vs_adamw_ci_low"], r["speedup_vs_adamw_ci_high"]):
            flags.append("its interval vs AdamW includes 1")
    best = r["best_first_order"]
    if best and best == opt:
        parts.append("the best first-order method here")
    elif best and not is_missing(r["speedup_vs_best_first_order"]):
        parts.append(f"{_ratio_of(r, 'speedup_vs_best_first_order')} vs the best first-order method ({best})")
        if includes_1(r["speedup_vs_best_first_order_ci_low"], r["speedup_vs_best_first_order_ci_high"]):
            flags.append(f"its interval vs {best} includes 1")
    if r.get("at_edge"):
        flags.append("its tuning optimum is at an edge of the grid searched")
    return ", ".join(parts) + (f" ({'; '.join(flags)})" if flags else "") + "."


def _not_covered(cells: list[dict], absent: list[str], k: int) -> str | None:
    """The sentence that names what the headline leaves out: cells whose tuning is incomplete, and backends
    of the setup with no finished run at this K."""
    left = [f"**{r['label']}** ({tuning_text(r)})" for r in cells if not tuning_complete(r)]
    left += [f"**{opt}** (no finished run at K = {k})" for opt in absent]
    return f"Not covered here: {'; '.join(left)}." if left else None


def headline(table: pd.DataFrame) -> list[tuple[str, list[str]]]:
    """Per setup: (a sentence that sets the scene, one sentence per backend whose tuning is complete,
    fewest steps first, then one naming what it could not cover)."""
    out = []
    for setup, part in table.groupby("setup", sort=True) if not table.empty else []:
        k = int(part["k"].max())
        target = float(part["target"].min())
        cells = part[(part.k == k) & (part.target == target)].to_dict("records")
        cells.sort(key=lambda r: as_inf(r["median_steps"]))
        tokens = int(cells[0]["tokens_per_step"])
        lead = (f"{setup}: steps to validation loss {target:g} at K = {k} ({tokens:,} tokens per step), the "
                "largest batch and the tightest target; median over seeds [95% interval] (n seeds), speedups "
                "paired by seed")
        lines = [_line(r) for r in cells if tuning_complete(r)]
        absent = [o for o in ordered(part["label"]) if o not in {r["label"] for r in cells}]
        lines += [s for s in (_not_covered(cells, absent, k),) if s]
        out.append((lead, lines))
    return out


def headline_markdown(table: pd.DataFrame) -> list[str]:
    lines = ["## What was found", ""]
    for lead, sentences in headline(table):
        lines += [f"{lead}:", ""] + [f"- {s}" for s in sentences] + [""]
    return lines
