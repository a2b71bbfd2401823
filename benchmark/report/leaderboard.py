"""``bench leaderboard merge``: gather the run records of several results folders or downloaded CI
artifacts into one store, de-duplicated by run id, then rebuild ``leaderboard.json`` from all of them.

A record that cannot be used (bad bytes, bad JSON, an unknown schema version, missing fields) or that does
not hold up (``benchmark.validate``: an unknown workload or corpus targets, a run id that is not the hash
of its settings, an outcome its own evaluations contradict) is refused: named with the reason, never
copied. Records are copied byte for byte, so their provenance (code
version, device, corpus, libraries) travels with them.
"""

from __future__ import annotations

import json
from pathlib import Path

from benchmark import BenchError
from benchmark.files import atomic_write, atomic_write_json
from benchmark.report.batchfit import batch_fits
from benchmark.report.frames import load
from benchmark.report.render import failures, leaderboard_json
from benchmark.report.tables import select_final, summary_table
from benchmark.results.record import READABLE_SCHEMAS, read_record
from benchmark.results.store import ResultsStore
from benchmark.results.validate import record_problem
from benchmark.workload.targets import load_targets, write_entry

_SCHEMAS = f"; this tool reads schema {', '.join(map(str, READABLE_SCHEMAS))}"


def _record_files(folder: Path) -> list[Path]:
    if (folder / "runs").is_dir():
        folder = folder / "runs"
    return sorted(p for p in folder.rglob("*.json") if not p.name.startswith("."))


def merge(sources: list[Path], into: Path, strict: bool = False) -> dict:
    """Copy every acceptable record of ``sources`` into the store at ``into``: readable, valid
    (``validate.record_problem``) and not there yet. With ``strict``, one refusal merges nothing."""
    missing = [str(s) for s in sources if not s.is_dir()]
    if missing:
        raise BenchError(f"not a folder: {', '.join(missing)}")
    store = ResultsStore(into)
    targets_files = [p for p in (*(s / "targets.json" for s in sources), store.targets_path) if p.is_file()]
    counts = {"merged": 0, "duplicates": 0, "refused": []}
    accepted: dict[str, Path] = {}
    files = {src: _record_files(src) for src in sources}
    if not any(files.values()) and not any(store.runs_dir.glob("*.json")):
        raise BenchError(f"no run records (*.json) in {', '.join(map(str, sources))}: nothing to merge")
    for src in sources:
        for path in files[src]:
            record, why = read_record(path)
            if why == "not a run record":
                continue  # e.g. a leaderboard.json inside an artifact
            if record is not None:
                why = record_problem(record, targets_files)
            elif why == "other schema":
                why = f"schema version {json.loads(path.read_bytes()).get('schema_version')!r}{_SCHEMAS}"
            if why is not None:
                counts["refused"].append(f"{path} ({why})")
                continue
            run_id = record["run"]["run_id"]
            if store.has(run_id) or run_id in accepted:
                counts["duplicates"] += 1
                continue
            accepted[run_id] = path
    if strict and counts["refused"]:
        return counts
    for src in sources:  # calibrations the merged records were run against travel with them
        for preset, by_corpus in load_targets(src / "targets.json").items():
            for corpus, entry in by_corpus.items():
                if corpus not in load_targets(store.targets_path).get(preset, {}):
                    write_entry(preset, entry, store.targets_path)
    for run_id, path in accepted.items():
        atomic_write(store.path(run_id), path.read_bytes())  # byte for byte: provenance travels
        counts["merged"] += 1
    return counts


def write_leaderboard(results: Path, path: Path) -> dict:
    runs, evals, _ = load(results)
    failed = failures(runs)
    runs = select_final(runs)
    table = summary_table(runs, evals)
    board = leaderboard_json(table, batch_fits(runs, evals), runs, failed)
    atomic_write_json(path, board)
    return board
