"""The report's HTML page: self-contained (figures embedded as data URIs, no external request), the
leaderboard table and every figure."""

from __future__ import annotations

import base64
import html
import json
import math
from pathlib import Path

import pandas as pd

from benchmark.tables import provenance


def html_page(md_table: str, table: pd.DataFrame, figures: list[Path], runs: pd.DataFrame, skipped: dict) -> str:
    imgs = []
    for p in figures:
        if p.suffix == ".png":
            data = base64.b64encode(p.read_bytes()).decode()
            imgs.append(f'<figure><img alt="{p.stem}" src="data:image/png;base64,{data}"><figcaption>{p.stem}'
                        "</figcaption></figure>")
    cols = ["workload", "target", "k", "tokens_per_step", "optimizer", "setting", "median_steps", "steps_ci_low",
            "steps_ci_high", "speedup_vs_adamw", "median_fwd_equiv", "median_seconds", "reached", "censored", "diverged"]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(r[c]))}</td>" for c in cols) + "</tr>"
                   for r in table.to_dict("records"))
    note = f"<p>Skipped records: {html.escape(json.dumps(skipped))}</p>" if skipped else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>optbench report</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1400px}}table{{border-collapse:collapse;font-size:13px}}
td,th{{border:1px solid #ccc;padding:3px 6px;text-align:right}}img{{max-width:100%}}figure{{margin:1em 0}}</style>
</head><body>
<h1>optbench report</h1>
<p>{len(runs)} runs; {html.escape(provenance(runs))}</p>{note}
<h2>Leaderboard</h2>
<table id="leaderboard"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>
<h2>Figures</h2>
{''.join(imgs)}
</body></html>
"""


def _cell(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    return f"{v:.3g}" if isinstance(v, float) else str(v)
