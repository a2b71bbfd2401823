"""The report's HTML page, self-contained (figures embedded as data URIs, a few lines of inline script, no
external request): what was found, a table for people (readable columns, numbers rounded to their
precision, '≥ budget' where censored, sortable by clicking a column), and every figure with a caption. The
full machine-readable table is ``summary.csv``."""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path

import pandas as pd

from benchmark.report.headline import (
    failed_count,
    gap_cell,
    headline,
    setting_cell,
    speedup_cell,
    steps_cell,
    tuning_cell,
    vs_best_cell,
)
from benchmark.report.missing import clean, is_missing
from benchmark.report.robustness import robustness_html, robustness_views
from benchmark.report.statistics import CENSORED_MEDIAN_RULE, LEVEL
from benchmark.report.tables import provenance

CAPTIONS = {
    "steps_vs_target": "Steps to each target (median over seeds, 95% interval) as the target tightens, per K.",
    "speedup": "Speedup in steps over AdamW at the tightest target, per K, with paired intervals. Where an "
               "optimizer never reached the target, ▽ marks the most its speedup can be (AdamW's steps ÷ the "
               "budget, below 1); where AdamW never did, a hatched bar the least.",
    "oracle_gap": "Each optimizer's steps divided by full Gauss-Newton's: how far it is from the GN oracle.",
    "performance_profiles": "Fraction of (K, target) cells each optimizer reaches within τ × the best "
                            "optimizer's steps (left) and compute (right).",
    "batch_scaling": "Steps against tokens per step, with the fit S(B) = S_min (1 + B_noise / B) where it holds.",
    "cost_to_target": "Steps, forward-equivalent passes and wall seconds to the tightest target.",
    "loss_curves": "Validation loss of each cell's selected setting; dashed lines are the targets.",
    "lr_sensitivity": "Every tuning run: steps to the tightest target and final loss against the learning rate; "
                      "runs with no steps to plot are marked at the top by why (legend), and optimizers are "
                      "drawn a few points apart so that equal settings and results stay visible.",
    "tuning_budget": "The best steps to the tightest target found after 1, 2, … tuning trials.",
    "sensitivity": "Per backend tuned by coordinate descent, the selected setting's steps to the tightest target "
                   "(seed 0) with one hyperparameter moved at a time: each row a hyperparameter, each dot a value "
                   "tried while every other sat at its selected value (labelled, the selected one in bold; dots "
                   "that lie together share a label, their values in the order of the dots), runs "
                   "that never reached the target at the budget with their mark, and the dashed line at the "
                   "selected setting's own steps. A row whose dots spread far from the line is a hyperparameter "
                   "that mattered.",
}

# (header, how to show a row, the value it sorts by)
COLUMNS = [
    ("Target", lambda r: f"{r['target']:g}", lambda r: r["target"]),
    ("K", lambda r: str(r["k"]), lambda r: r["k"]),
    ("Tokens / step", lambda r: f"{r['tokens_per_step']:,}", lambda r: r["tokens_per_step"]),
    ("Optimizer", lambda r: r["label"], lambda r: r["label"]),
    ("Setting", setting_cell, lambda r: r["setting"]),
    ("Tuning trials (compute)", tuning_cell, lambda r: r["tuning_trials"]),
    ("Steps [95% CI]", steps_cell, lambda r: _sortable(r["median_steps"])),
    ("× vs AdamW", speedup_cell, lambda r: _sortable(r["speedup_vs_adamw"], 0)),
    ("× vs best first-order", vs_best_cell, lambda r: _sortable(r["speedup_vs_best_first_order"], 0)),
    ("Steps ÷ full GN's", gap_cell, lambda r: _sortable(r["oracle_gap"])),
    ("Compute to target (fwd-equiv)", lambda r: _number(r["median_fwd_equiv"], "{:,.0f}"),
     lambda r: _sortable(r["median_fwd_equiv"])),
    ("Time to target (s)", lambda r: _number(r["median_seconds"], "{:.3g}"),
     lambda r: _sortable(r["median_seconds"])),
    ("Runs reached / censored / diverged", lambda r: f"{r['reached']} / {r['censored']} / {r['diverged']}",
     lambda r: r["reached"]),
    ("From (host · device · code)", lambda r: r["provenance"], lambda r: r["provenance"]),
]
# the failed trials' table: (header, field)
FAILURE_COLUMNS = [("Workload", "setup"), ("Optimizer", "label"), ("K", "k"), ("Setting", "setting"),
                   ("Seed", "seed"), ("Role", "role"), ("Step", "step"), ("Error", "type"), ("Message", "message"),
                   ("Log", "log")]

SORT_SCRIPT = """
document.querySelectorAll('table.sortable th').forEach((th, col) => th.addEventListener('click', () => {
  const body = th.closest('table').tBodies[0], up = th.dataset.dir !== 'up';
  th.closest('tr').querySelectorAll('th').forEach(h => delete h.dataset.dir); th.dataset.dir = up ? 'up' : 'down';
  const key = tr => { const v = tr.cells[col].dataset.v, n = parseFloat(v); return isNaN(n) ? v : n; };
  [...body.rows].sort((a, b) => { const x = key(a), y = key(b);
    return (x < y ? -1 : x > y ? 1 : 0) * (up ? 1 : -1); }).forEach(tr => body.appendChild(tr));
}));
"""


def _sortable(v, censored: float = math.inf):
    return censored if is_missing(v) else v


def _number(v, spec: str) -> str:
    return "censored" if is_missing(v) else spec.format(v)


def _table(part: pd.DataFrame) -> str:
    head = "".join(f'<th title="click to sort">{html.escape(name)}</th>' for name, _, _ in COLUMNS)
    rows = []
    for r in part.to_dict("records"):
        cells = "".join(f'<td data-v="{html.escape(str(key(r)))}">{html.escape(show(r))}</td>'
                        for _, show, key in COLUMNS)
        rows.append(f"<tr>{cells}</tr>")
    return (f'<div class="scroll"><table class="sortable"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>')


def _headline(table: pd.DataFrame) -> str:
    parts = []
    for lead, sentences in headline(table):
        items = "".join(f"<li>{_bold(html.escape(s))}</li>" for s in sentences)
        parts.append(f"<p>{html.escape(lead)}:</p><ul>{items}</ul>")
    return '<section id="headline"><h2>What was found</h2>' + "".join(parts) + "</section>"


def _bold(text: str) -> str:
    """Markdown's **name** as <strong> (the headline is written once, for both the page and the Markdown)."""
    pieces = text.split("**")
    return "".join(f"<strong>{p}</strong>" if i % 2 else p for i, p in enumerate(pieces))


def _failures(failed: pd.DataFrame) -> str:
    """The failed trials, apart from the divergences counted in the table ('' without failures)."""
    if failed.empty:
        return ""
    head = "".join(f"<th>{html.escape(name)}</th>" for name, _ in FAILURE_COLUMNS)
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(_shown(r[field]))}</td>" for _, field in FAILURE_COLUMNS)
                   + "</tr>" for r in failed.to_dict("records"))
    return (f'<section id="failures"><h2>Failed trials</h2><p>{failed_count(failed)} raised an error. A failed '
            "trial counts in no table, figure or headline here (a diverged run is no failure: it counts in its "
            "cell); its traceback is in its log, under the results folder, and the next <code>bench run</code> "
            f'runs it again.</p><div class="scroll"><table class="failures"><thead><tr>{head}</tr></thead>'
            f"<tbody>{rows}</tbody></table></div></section>")


def _shown(v) -> str:
    v = clean(v)
    return "—" if v is None else f"{v:.0f}" if isinstance(v, float) else str(v)


def html_page(table: pd.DataFrame, figures: list[Path], runs: pd.DataFrame, failed: pd.DataFrame,
              skipped: dict) -> str:
    figs = []
    for p in figures:
        if p.suffix == ".png":
            data = base64.b64encode(p.read_bytes()).decode()
            figs.append(f'<figure id="fig-{p.stem}"><img alt="{p.stem}" src="data:image/png;base64,{data}">'
                        f"<figcaption>{html.escape(CAPTIONS.get(p.stem, p.stem))}</figcaption></figure>")
    tables = "".join(f"<h3>{html.escape(w)}</h3>{_table(part)}" for w, part in table.groupby("setup", sort=True))
    note = ""
    if skipped:
        total = sum(skipped.values())
        reasons = ", ".join(f"{n} {why}" for why, n in sorted(skipped.items()))
        note = f'<p class="skipped">Skipped {total} record files that cannot be used: {html.escape(reasons)}.</p>'
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>optbench report</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1500px;line-height:1.4}}
table{{border-collapse:collapse;font-size:13px;margin-bottom:1.5em}}
td,th{{border:1px solid #ccc;padding:3px 7px;text-align:right;white-space:nowrap}}th{{background:#f2f2f2;cursor:pointer;white-space:normal;vertical-align:bottom}}
.scroll{{overflow-x:auto}}
th[data-dir=up]::after{{content:" ▲"}}th[data-dir=down]::after{{content:" ▼"}}
td:nth-child(4),td:nth-child(5),td:last-child{{text-align:left}}img{{max-width:100%}}figure{{margin:1.5em 0}}
figcaption{{color:#444;font-size:14px}}table.robustness td,table.robustness th{{text-align:left;cursor:default}}.verdict{{font-weight:bold}}.skipped{{color:#a40}}table.failures td{{text-align:left}}</style>
</head><body>
<h1>optbench report</h1>
<p>{len(runs) + len(failed)} runs{f" ({failed_count(failed)} failed: listed below)" if len(failed) else ""};
{html.escape(provenance(runs))}</p>{note}
{_headline(table)}
{robustness_html(robustness_views(table))}
<h2>Leaderboard</h2>
<p>Median over seeds of each cell's selected setting, with {LEVEL:.0%} bootstrap intervals and the number of seeds
n each rests on (one seed: a value, no interval); speedups are paired by seed, * where the interval
excludes 1. A median is censored (≥ budget) when {CENSORED_MEDIAN_RULE}; where one side of a ratio is
censored, ≥ or ≤ gives the bound the budget sets. A cell marked "tuning incomplete" has planned tuning
trials with no record here (or only a failed one): its row is provisional, no speedup is taken over it,
and the headline leaves it out. Click a column to sort. Every number, unrounded, is in
<code>summary.csv</code>.</p>
{tables}
{_failures(failed)}
<h2>Figures</h2>
{''.join(figs)}
<script>{SORT_SCRIPT}</script>
</body></html>
"""
