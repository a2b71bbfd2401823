"""What was found, in words generated from the numbers: per workload, at its largest K and its tightest
target, each backend's steps with their interval and its speedups over AdamW and over the best first-order
method, flagged where an interval includes 1 or a tuning optimum sits at a grid edge. Both the page and
``leaderboard.md`` open with it; cell values are formatted here for both."""

from __future__ import annotations

import math

import pandas as pd

from benchmark.tables import nan_none


def steps_text(median, lo=None, hi=None, budget=None, bracket=None) -> str:
    """Steps to a target rounded to what the evaluation grid resolves, '≥ budget' where censored."""
    median, lo, hi, budget = (nan_none(v) for v in (median, lo, hi, budget))
    if median is None:
        return f"≥ {budget:.0f} (censored)" if budget is not None else "censored"
    bracket = nan_none(bracket)
    spec = "{:.1f}" if median < 100 and (bracket is None or bracket <= 1 or median < 10) else "{:,.0f}"

    def bound(v) -> str:
        if math.isinf(v):
            return f"≥{budget:.0f}" if budget is not None else "∞"
        return spec.format(v)

    return spec.format(median) + (f" [{bound(lo)}, {bound(hi)}]" if lo is not None and hi is not None else "")


def ratio_text(point, lo=None, hi=None) -> str:
    point, lo, hi = (nan_none(v) for v in (point, lo, hi))
    if point is None:
        return "—"

    def f(v) -> str:
        return "∞" if math.isinf(v) else (f"{v:.2f}" if v < 10 else f"{v:.1f}")

    return f"{f(point)}×" + (f" [{f(lo)}, {f(hi)}]" if lo is not None and hi is not None else "")


def includes_1(lo, hi) -> bool:
    lo, hi = nan_none(lo), nan_none(hi)
    return lo is not None and hi is not None and lo <= 1 <= hi


def _line(r: dict) -> str:
    opt = r["optimizer"]
    steps = steps_text(r["median_steps"], r["steps_ci_low"], r["steps_ci_high"], r["budget"], r["bracket"])
    if nan_none(r["median_steps"]) is None:
        return f"**{opt}** did not reach it within the budget: {steps}."
    parts = [f"**{opt}**: {steps} steps"]
    flags = []
    if opt != "adamw" and nan_none(r.get("speedup_vs_adamw_at_least")) is not None:
        parts.append(f"at least {r['speedup_vs_adamw_at_least']:.1f}× vs AdamW (AdamW did not reach it)")
    elif opt != "adamw" and nan_none(r["speedup_vs_adamw"]) is not None:
        parts.append(f"{ratio_text(r['speedup_vs_adamw'], r['speedup_vs_adamw_ci_low'], r['speedup_vs_adamw_ci_high'])}"
                     " vs AdamW")
        if includes_1(r["speedup_vs_adamw_ci_low"], r["speedup_vs_adamw_ci_high"]):
            flags.append("its interval vs AdamW includes 1")
    best = r["best_first_order"]
    if best and best == opt:
        parts.append("the best first-order method here")
    elif best and nan_none(r["speedup_vs_best_first_order"]) is not None:
        parts.append(f"{ratio_text(r['speedup_vs_best_first_order'], r['speedup_vs_best_first_order_ci_low'], r['speedup_vs_best_first_order_ci_high'])}"
                     f" vs the best first-order method ({best})")
        if includes_1(r["speedup_vs_best_first_order_ci_low"], r["speedup_vs_best_first_order_ci_high"]):
            flags.append(f"its interval vs {best} includes 1")
    if r.get("at_edge"):
        flags.append("its tuning optimum is at an edge of the grid searched")
    return ", ".join(parts) + (f" ({'; '.join(flags)})" if flags else "") + "."


def headline(table: pd.DataFrame) -> list[tuple[str, list[str]]]:
    """Per workload: (a sentence that sets the scene, one sentence per backend, fewest steps first)."""
    out = []
    for workload, part in table.groupby("workload", sort=True) if not table.empty else []:
        k = int(part["k"].max())
        target = float(part["target"].min())
        cell = part[(part.k == k) & (part.target == target)].to_dict("records")
        cell.sort(key=lambda r: math.inf if nan_none(r["median_steps"]) is None else r["median_steps"])
        tokens = int(cell[0]["tokens_per_step"])
        lead = (f"{workload}: steps to validation loss {target:g} at K = {k} ({tokens:,} tokens per step), the "
                "largest batch and the tightest target; median over seeds [95% interval], speedups paired by seed")
        out.append((lead, [_line(r) for r in cell]))
    return out


def headline_markdown(table: pd.DataFrame) -> list[str]:
    lines = ["## What was found", ""]
    for lead, sentences in headline(table):
        lines += [f"{lead}:", ""] + [f"- {s}" for s in sentences] + [""]
    return lines
