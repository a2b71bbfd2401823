"""What was found, in words generated from the numbers: per setup (of several tuning protocols of one base
setup, the most thoroughly tuned, named), at its largest K and its tightest target, each backend's steps with
their interval and its speedups over AdamW and over the best first-order method, flagged where an interval
includes 1, a tuning optimum sits at a grid edge or the compared rows were tuned in trials that differ by
more than a factor of 2; a cell whose tuning is incomplete is left out and named, with any backend that has
no finished run there. Both the page and
``leaderboard.md`` open with it; cell values are formatted here for both, each interval with the number of
seeds it rests on (one seed: the value and ``n = 1``, no interval)."""

from __future__ import annotations

import math

import pandas as pd

from benchmark.report.frames import most_thorough, protocol_rank, protocol_text
from benchmark.report.missing import as_inf, clean, is_missing
from benchmark.report.tables import ordered, tuning_complete
from benchmark.results.record import GRID


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


UNEQUAL = 2  # tuning trials of two compared rows that differ by more than this factor are flagged


def unequal_tuning(r: dict, cells: dict[str, dict]) -> str:
    """'' where the row's tuning trials are within a factor ``UNEQUAL`` of those of each row its headline line
    compares it with (AdamW, the best first-order method), else which differ ("unequal tuning: 17 trials against
    3 for adamw"): a cell tuned in more trials had a better chance at its optimum."""
    mine = int(r["tuning_trials"])
    compared = [o for o in dict.fromkeys(("adamw", r.get("best_first_order") or "")) if o and o != r["label"]]
    theirs = [(o, int(cells[o]["tuning_trials"])) for o in compared if o in cells]
    odd = [f"{n} for {o}" for o, n in theirs if max(mine, n) > UNEQUAL * min(mine, n)]
    return f"unequal tuning: {mine} trials against {' and '.join(odd)}" if odd else ""


def _line(r: dict, cells: dict[str, dict]) -> str:
    opt = r["label"]
    unequal = unequal_tuning(r, cells)
    if is_missing(r["median_steps"]):
        at_most = clean(r["speedup_vs_adamw_at_most"])
        bound = f"; its speedup vs AdamW is at most {_times(at_most)}×" if at_most is not None else ""
        return f"**{opt}** did not reach it within the budget: {_noted(steps_cell(r) + bound, unequal)}."
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
    flags += [unequal] if unequal else []
    return ", ".join(parts) + (f" ({'; '.join(flags)})" if flags else "") + "."


def _not_covered(cells: list[dict], absent: list[str], k: int) -> str | None:
    """The sentence that names what the headline leaves out: cells whose tuning is incomplete, and backends
    of the setup with no finished run at this K."""
    left = [f"**{r['label']}** ({tuning_text(r)})" for r in cells if not tuning_complete(r)]
    left += [f"**{opt}** (no finished run at K = {k})" for opt in absent]
    return f"Not covered here: {'; '.join(left)}." if left else None


def quoted_setups(table: pd.DataFrame) -> list[tuple[str, str, list[str]]]:
    """(setup, its protocol, every protocol of its base setup) of each setup the headline quotes: per base setup,
    the most thoroughly tuned protocol present (``frames.most_thorough``)."""
    table = table.assign(protocol=table.get("protocol", GRID), base_setup=table.get("base_setup", table["setup"]))
    out = []
    for _, part in table.groupby("base_setup", sort=True):
        protocols = sorted(set(part["protocol"]), key=protocol_rank)
        chosen = most_thorough(protocols)
        out.append((part.loc[part["protocol"] == chosen, "setup"].iloc[0], chosen, protocols))
    return sorted(out)


def _lead(setup: str, k: int, target: float, tokens: int, chosen: str, protocols: list[str]) -> str:
    others = (f", the most thoroughly tuned of the {len(protocols)} protocols these records hold for this setup "
              f"({', '.join(protocols)}: the robustness view sets them side by side)") if len(protocols) > 1 else ""
    largest = "the largest batch" if len(protocols) == 1 else f"the largest batch the {chosen} protocol ran"
    return (f"{setup}: steps to validation loss {target:g} at K = {k} ({tokens:,} tokens per step), {largest} "
            f"and the tightest target, under {protocol_text(chosen)}{others}; median over seeds [95% interval] "
            "(n seeds), speedups paired by seed")


def headline(table: pd.DataFrame) -> list[tuple[str, list[str]]]:
    """Per base setup, under its most thoroughly tuned protocol: (a sentence that sets the scene and names the
    protocol, one sentence per backend whose tuning is complete, fewest steps first, each flagged where its
    comparisons had unequal tuning, then one naming what it could not cover)."""
    out = []
    for setup, chosen, protocols in quoted_setups(table) if not table.empty else []:
        part = table[table["setup"] == setup]
        k = int(part["k"].max())
        target = float(part["target"].min())
        cells = part[(part.k == k) & (part.target == target)].to_dict("records")
        cells.sort(key=lambda r: as_inf(r["median_steps"]))
        by_label = {r["label"]: r for r in cells}
        lines = [_line(r, by_label) for r in cells if tuning_complete(r)]
        absent = [o for o in ordered(part["label"]) if o not in by_label]
        lines += [s for s in (_not_covered(cells, absent, k),) if s]
        out.append((_lead(setup, k, target, int(cells[0]["tokens_per_step"]), chosen, protocols), lines))
    return out


def headline_markdown(table: pd.DataFrame) -> list[str]:
    lines = ["## What was found", ""]
    for lead, sentences in headline(table):
        lines += [f"{lead}:", ""] + [f"- {s}" for s in sentences] + [""]
    return lines
