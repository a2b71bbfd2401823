"""Rewrite the README's results section from a report folder that ``bench report`` wrote.

    python scripts/readme_results.py REPORT "COMMAND" [--preset cpu] [--readme README.md]

Between ``<!-- results:start -->`` and ``<!-- results:end -->`` it writes the report's headline (the
``headline`` of ``leaderboard.json``), one compact table per setup of the preset at its tightest target
(optimizer, K, median steps with interval, speedup over AdamW, compute to target; cells formatted as the
report formats them), the speedup figure, copied to ``docs/results/speedup.png`` beside the README, and
the line that says which command and which code version produced them. Nothing outside the markers
changes.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmark.files import atomic_write  # noqa: E402
from benchmark.report.headline import fmt, speedup_cell, steps_cell, tuning_text  # noqa: E402

START, END = "<!-- results:start -->", "<!-- results:end -->"
FIGURE = Path("docs") / "results" / "speedup.png"  # relative to the README's folder


def preset_rows(board: dict, preset: str) -> dict[str, list[dict]]:
    """Per setup of ``preset`` (each version, corpus and numerics it was run with), its entries at its
    tightest target."""
    rows: dict[str, list[dict]] = {}
    for entry in board["entries"]:
        if entry["workload"] == preset:
            rows.setdefault(entry["setup"], []).append(entry)
    return {s: [r for r in part if r["target"] == min(e["target"] for e in part)] for s, part in rows.items()}


def table(rows: list[dict]) -> list[str]:
    lines = ["| optimizer | K | median steps [95% CI] | speedup vs AdamW [95% CI] | compute to target (fwd-equiv) |",
             "|---|---:|---|---|---:|"]
    for r in rows:
        name = f"{r['label']} ({tuning_text(r)})" if tuning_text(r) else r["label"]
        lines.append(f"| {name} | {r['k']} | {steps_cell(r)} | {speedup_cell(r)} | "
                     f"{fmt(r['median_fwd_equiv'], '{:,.0f}')} |")
    return lines


def section(board: dict, preset: str, command: str) -> str:
    """The text between the markers."""
    rows = preset_rows(board, preset)
    if not rows:
        raise SystemExit(f"the report holds no results of preset {preset!r}")
    lines = []
    for item in board["headline"]:
        if any(item["scene"].startswith(f"{setup}:") for setup in rows):
            lines += [f"{item['scene']}:", "", *(f"- {finding}" for finding in item["findings"]), ""]
    for setup, part in rows.items():
        lines += [f"{setup}, steps to validation loss {part[0]['target']:g} at every K:", "", *table(part), ""]
    versions = ", ".join(board["provenance"]["code_versions"])
    lines += [f"![Speedup over AdamW, paired intervals]({FIGURE.as_posix()})", "",
              f"Produced by `{command}` at commit `{versions}`."]
    return "\n".join(lines)


def replace_between(text: str, body: str) -> str:
    """``text`` with everything between the markers replaced by ``body``; the markers and the rest kept."""
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start or text.count(START) != 1 or text.count(END) != 1:
        raise SystemExit(f"the README needs exactly one {START} and, after it, one {END}")
    return f"{text[:start + len(START)]}\n{body}\n{text[end:]}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path, help="a folder written by bench report")
    parser.add_argument("command", help="the command that produced the records, as it was typed")
    parser.add_argument("--preset", default="cpu", help="the preset whose table is shown (default: cpu)")
    parser.add_argument("--readme", type=Path, default=Path(__file__).resolve().parent.parent / "README.md")
    args = parser.parse_args(argv)
    board = json.loads((args.report / "leaderboard.json").read_text())
    text = replace_between(args.readme.read_text(), section(board, args.preset, args.command))
    figure = args.readme.parent / FIGURE
    figure.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(args.report / "speedup.png", figure)
    atomic_write(args.readme, text)
    print(f"{args.readme}: results of {args.report} ({args.command}); figure {figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
