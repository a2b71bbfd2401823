"""The robustness view: does the oracle gap survive baselines tuned in depth and a decayed schedule? Wherever the
records hold more than one tuning protocol (``frames.PROTOCOLS``: grid, coordinate, wsd) for one base setup and
K, the summary table pivoted by protocol at that K and the tightest target: each backend's steps with their
interval and seeds, full GN's paired speedups over AdamW and over the best first-order method, and the tuning
each protocol spent (its trials and their compute, summed over its backends). Every number is the summary
table's (``tables.summary_table``, each protocol a setup of its own that compares within itself); the sentence
that says whether the gap survived each protocol is generated from them, by the rule the rest of the report
decides significance by: an interval that excludes 1."""

from __future__ import annotations

import html

import pandas as pd

from benchmark.report.frames import protocol_rank, protocol_text
from benchmark.report.headline import ratio_text, steps_cell, tuning_text
from benchmark.report.missing import as_float, clean
from benchmark.report.tables import ordered, tuning_complete

ORACLE = "gn"  # full Gauss-Newton: the bound on what preconditioning reaches
ROW_FIELDS = ("label", "optimizer", "family", "setting", "median_steps", "steps_ci_low", "steps_ci_high", "seeds",
              "budget", "bracket", "tuning_trials", "tuning_planned", "tuning_complete", "tuning_fwd_equiv")
RATIOS = ("speedup_vs_adamw", "speedup_vs_best_first_order")
RATIO_FIELDS = ("", "_ci_low", "_ci_high", "_seeds", "_at_least", "_at_most")
SURVIVED, LOST, UNJUDGED = "survived", "did not survive", "could not be judged"


def robustness_views(table: pd.DataFrame) -> list[dict]:
    """One view per (base setup, K) that more than one protocol ran, in the order of the setups and Ks."""
    if table.empty or "protocol" not in table:
        return []
    views = []
    for (base, k), part in table.groupby(["base_setup", "k"], sort=True):
        protocols = sorted(set(part["protocol"]), key=protocol_rank)
        if len(protocols) < 2:
            continue
        target = float(part["target"].min())
        tight = part[part["target"] == target]
        entries = [_entry(tight[tight["protocol"] == p], p) for p in protocols]
        views.append({"base_setup": base, "k": int(k), "target": target,
                      "tokens_per_step": int(tight["tokens_per_step"].iloc[0]), "protocols": protocols,
                      "labels": ordered(tight["label"]), "by_protocol": entries, "oracle_gap": gap_sentence(entries)})
    return views


def _entry(rows: pd.DataFrame, protocol: str) -> dict:
    """One protocol's column of the view: its rows' steps, full GN's ratios, the tuning spent, the verdict."""
    records = rows.to_dict("records")
    gn = next((r for r in records if r["label"] == ORACLE), None)
    trials = [int(r["tuning_trials"]) for r in records]
    compute = [as_float(r.get("tuning_fwd_equiv")) for r in records]
    verdict, why = verdict_of(gn)
    return {"protocol": protocol, "setup": records[0]["setup"],
            "rows": [{f: clean(r.get(f)) for f in ROW_FIELDS} for r in records],
            "tuning_trials": sum(trials), "tuning_trials_per_backend": [min(trials), max(trials)],
            "tuning_fwd_equiv": None if all(c is None for c in compute) else sum(c or 0.0 for c in compute),
            "gn": None if gn is None else {"best_first_order": gn["best_first_order"] or None,
                                            **{f"{p}{f}": clean(gn.get(f"{p}{f}")) for p in RATIOS for f in RATIO_FIELDS}},
            "oracle_gap_verdict": verdict, "oracle_gap_why": why}


def verdict_of(gn: dict | None) -> tuple[str, str]:
    """(whether full GN's speedup over the best first-order method held under a protocol, why where it is not
    plain): ``SURVIVED`` where its paired interval lies above 1 (or the best first-order method's median is
    censored and GN's is not), ``LOST`` where the interval includes 1 or lies below it (or GN's median is the
    censored one), ``UNJUDGED`` where there is nothing to judge by."""
    if gn is None:
        return UNJUDGED, f"no {ORACLE} row"
    if not tuning_complete(gn):
        return UNJUDGED, f"{ORACLE}'s {tuning_text(gn)}"
    if not gn.get("best_first_order"):
        return UNJUDGED, "no best first-order method: fewer than two first-order backends with complete tuning"
    p = "speedup_vs_best_first_order"
    lo, hi = as_float(gn.get(f"{p}_ci_low")), as_float(gn.get(f"{p}_ci_high"))
    if lo is not None and hi is not None:
        return (SURVIVED, "") if lo > 1 else (LOST, "its interval includes 1" if hi >= 1 else "its interval is below 1")
    if as_float(gn.get(f"{p}_at_least")) is not None:
        return SURVIVED, f"{gn['best_first_order']} did not reach the target"
    if as_float(gn.get(f"{p}_at_most")) is not None:
        return LOST, f"{ORACLE} did not reach the target"
    if as_float(gn.get(p)) is not None:
        return UNJUDGED, "one seed: no interval"
    return UNJUDGED, "neither reached the target"


def gap_text(gn: dict | None) -> str:
    """Full GN's speedup over the best first-order method, with its interval, seeds and that method's name."""
    if gn is None:
        return "—"
    p = "speedup_vs_best_first_order"
    text = ratio_text(*(gn.get(f"{p}{f}") for f in RATIO_FIELDS))
    return text + (f" vs {gn['best_first_order']}" if gn.get("best_first_order") and text != "—" else "")


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def gap_sentence(entries: list[dict]) -> str:
    """Whether the oracle gap survived each protocol, in one sentence generated from the entries' verdicts."""
    groups: dict[str, list[str]] = {SURVIVED: [], LOST: [], UNJUDGED: []}
    for e in entries:
        shown = gap_text(e["gn"])
        detail = "; ".join(x for x in (shown if shown != "—" else "", e["oracle_gap_why"]) if x)
        groups[e["oracle_gap_verdict"]].append(f"{e['protocol']} ({detail})" if detail else e["protocol"])
    clauses = []
    if groups[SURVIVED]:
        every = " every protocol here:" if len(groups[SURVIVED]) == len(entries) else ""
        clauses.append(f"survived{every} {_and(groups[SURVIVED])}")
    if groups[LOST]:
        clauses.append(f"did not survive {_and(groups[LOST])}")
    if groups[UNJUDGED]:
        clauses.append(f"could not be judged under {_and(groups[UNJUDGED])}")
    return (f"The oracle gap (full GN's steps against the best first-order method's, paired by seed) "
            f"{'; it '.join(clauses)}.")


# ------------------------------------------------------------------------ the view as tables, for both pages

def _steps(row: dict) -> str:
    return steps_cell(row) + (f" ({tuning_text(row)})" if not tuning_complete(row) else "")


def view_tables(view: dict) -> list[tuple[list[str], list[list[str]]]]:
    """(header, rows of text) of the view's two tables: each backend's steps under each protocol; then full GN's
    speedups and the tuning each protocol spent."""
    entries = view["by_protocol"]
    head = list(view["protocols"])
    by = [{r["label"]: r for r in e["rows"]} for e in entries]
    steps = [[label, *(_steps(b[label]) if label in b else "—" for b in by)] for label in view["labels"]]

    def gn_ratio(e: dict, p: str) -> str:
        if e["gn"] is None:
            return "—"
        text = ratio_text(*(e["gn"].get(f"{p}{f}") for f in RATIO_FIELDS))
        lo, hi = as_float(e["gn"].get(f"{p}_ci_low")), as_float(e["gn"].get(f"{p}_ci_high"))
        return text + (" *" if lo is not None and hi is not None and (lo > 1 or hi < 1) else "")

    def trials(e: dict) -> str:
        low, high = e["tuning_trials_per_backend"]
        return f"{e['tuning_trials']} ({low} each)" if low == high else f"{e['tuning_trials']} ({low}–{high} each)"

    def compute(e: dict) -> str:
        return "—" if e["tuning_fwd_equiv"] is None else f"{e['tuning_fwd_equiv']:,.0f}"

    def best(e: dict) -> str:
        gap = gn_ratio(e, "speedup_vs_best_first_order")
        name = (e["gn"] or {}).get("best_first_order")
        return f"{gap} ({name})" if name and gap != "—" else gap

    summary = [[f"{ORACLE}: speedup vs AdamW", *(gn_ratio(e, "speedup_vs_adamw") for e in entries)],
               [f"{ORACLE}: speedup vs the best first-order method", *(best(e) for e in entries)],
               ["oracle gap", *(e["oracle_gap_verdict"] for e in entries)],
               ["tuning trials, all backends", *(trials(e) for e in entries)],
               ["tuning compute, all backends (fwd-equiv)", *(compute(e) for e in entries)]]
    return [(["optimizer", *head], steps), (["", *head], summary)]


def _scene(view: dict) -> str:
    described = ", ".join(protocol_text(p, article=False) for p in view["protocols"])
    return (f"{view['base_setup']} at K = {view['k']} ({view['tokens_per_step']:,} tokens per step), steps to "
            f"validation loss {view['target']:g}, the tightest target, under each tuning protocol these records hold: "
            f"{described}. Each protocol compares within itself: its own AdamW and its own best first-order method. "
            "Median over seeds [95% interval] (n seeds); speedups paired by seed, * where the interval excludes 1; "
            "tuning trials and their compute summed over the protocol's backends.")


TITLE = "Robustness: the tuning protocols side by side"


def robustness_markdown(views: list[dict]) -> list[str]:
    """The view's section of ``leaderboard.md`` (none without a view)."""
    if not views:
        return []
    lines = [f"## {TITLE}", ""]
    for view in views:
        lines += [f"### {view['base_setup']}, K = {view['k']}", "", _scene(view), ""]
        for head, rows in view_tables(view):
            lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
            lines += ["| " + " | ".join(row) + " |" for row in rows] + [""]
        lines += [view["oracle_gap"], ""]
    return lines


def robustness_html(views: list[dict]) -> str:
    """The view's section of the page ('' without a view)."""
    if not views:
        return ""
    parts = [f'<section id="robustness"><h2>{html.escape(TITLE)}</h2>']
    for view in views:
        parts.append(f"<h3>{html.escape(view['base_setup'])}, K = {view['k']}</h3><p>{html.escape(_scene(view))}</p>")
        for head, rows in view_tables(view):
            header = "".join(f"<th>{html.escape(h)}</th>" for h in head)
            body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
            parts.append(f'<div class="scroll"><table class="robustness"><thead><tr>{header}</tr></thead>'
                         f"<tbody>{body}</tbody></table></div>")
        parts.append(f'<p class="verdict">{html.escape(view["oracle_gap"])}</p>')
    return "".join(parts) + "</section>"
