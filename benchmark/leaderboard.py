"""``bench leaderboard merge``: gather the run records of several results folders or downloaded CI
artifacts into one store, de-duplicated by run id, then rebuild ``leaderboard.json`` from all of them.

A record that cannot be used (bad bytes, bad JSON, an unknown schema version, missing fields) is refused:
named with the reason, never copied. Records are copied byte for byte, so their provenance (code
version, device, corpus, libraries) travels with them.
"""

from __future__ import annotations

import json
from pathlib import Path

from benchmark import BenchError
from benchmark.batchfit import batch_fits
from benchmark.files import atomic_write, atomic_write_json
from benchmark.record import READABLE_SCHEMAS, read_record
from benchmark.report import leaderboard_json, load
from benchmark.store import ResultsStore
from benchmark.tables import select_final, summary_table

_SCHEMAS = f"; this tool reads schema {', '.join(map(str, READABLE_SCHEMAS))}"


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
            record, why = read_record(path)
            if why == "not a run record":
                continue  # e.g. a leaderboard.json inside an artifact
            if record is None:
                if why == "other schema":
                    why = f"schema version {json.loads(path.read_bytes()).get('schema_version')!r}{_SCHEMAS}"
                counts["refused"].append(f"{path} ({why})")
                continue
            run_id = record["run"]["run_id"]
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
