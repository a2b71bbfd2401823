"""``bench leaderboard merge``: gather the run records of several results folders or downloaded CI
artifacts into one store, de-duplicated by run id, then rebuild ``leaderboard.json`` from all of them.

A record of an unknown schema version is refused (named, counted, never copied); a truncated or
malformed file is skipped the same way. Records are copied byte for byte, so their provenance (code
version, device, corpus, libraries) travels with them.
"""

from __future__ import annotations

import json
from pathlib import Path

from benchmark import BenchError
from benchmark.files import atomic_write, atomic_write_json
from benchmark.record import READABLE_SCHEMAS
from benchmark.report import leaderboard_json, load
from benchmark.store import ResultsStore
from benchmark.tables import batch_fits, select_final, summary_table


def _record_files(folder: Path) -> list[Path]:
    if (folder / "runs").is_dir():
        folder = folder / "runs"
    return sorted(p for p in folder.rglob("*.json") if not p.name.startswith("."))


def merge(sources: list[Path], into: Path) -> dict:
    missing = [str(s) for s in sources if not s.is_dir()]
    if missing:
        raise BenchError(f"not a folder: {', '.join(missing)}")
    store = ResultsStore(into)
    counts = {"merged": 0, "duplicates": 0, "refused": []}
    for src in sources:
        for path in _record_files(src):
            try:
                rec = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError):
                counts["refused"].append(f"{path} (unreadable)")
                continue
            if not isinstance(rec, dict) or "run" not in rec:
                continue  # not a run record (e.g. a leaderboard.json inside an artifact)
            if rec.get("schema_version") not in READABLE_SCHEMAS:
                counts["refused"].append(f"{path} (schema version {rec.get('schema_version')!r}, "
                                         f"this tool reads {', '.join(map(str, READABLE_SCHEMAS))})")
                continue
            run_id = rec["run"].get("run_id")
            if not run_id or "evals" not in rec:
                counts["refused"].append(f"{path} (missing fields)")
                continue
            if store.has(run_id):
                counts["duplicates"] += 1
                continue
            atomic_write(store.path(run_id), path.read_bytes())  # byte for byte: provenance travels
            counts["merged"] += 1
    return counts


def write_leaderboard(results: Path, path: Path) -> dict:
    runs, evals, _ = load(results)
    runs = select_final(runs)
    table = summary_table(runs, evals)
    board = leaderboard_json(table, batch_fits(runs, evals), runs)
    atomic_write_json(path, board)
    return board
