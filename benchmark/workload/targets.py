"""Calibrated targets (``bench calibrate``), versioned in ``benchmark/workload/targets.json``: per preset and corpus,
the target losses, the workload version they belong to, the corpus they were calibrated on (its name
and content fingerprint) and the command that produced them. A results folder may hold its own
``targets.json`` (what ``bench run`` calibrated for a corpus that ships none)."""

from __future__ import annotations

import json
from pathlib import Path

from benchmark.files import atomic_write

TARGETS_FILE = Path(__file__).with_name("targets.json")


def load_targets(path: Path | None = None) -> dict:
    """preset -> corpus name -> entry (targets, version, calibrated_at, command, ...)."""
    path = path or TARGETS_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def calibrated_entry(preset: str, corpus_key: str | None, path: Path | None = None) -> dict | None:
    """The entry of ``preset`` calibrated on exactly ``corpus_key`` (name:fingerprint), else None: a
    corpus of the same name with other content gets no foreign targets."""
    name = (corpus_key or "").split(":")[0]
    entry = load_targets(path).get(preset, {}).get(name)
    return entry if entry and entry.get("corpus_key") == corpus_key else None


def write_entry(preset: str, entry: dict, path: Path | None = None) -> None:
    """Add or replace the entry of (preset, entry["corpus"]), keeping every other entry."""
    path = path or TARGETS_FILE
    data = load_targets(path)
    data.setdefault(preset, {})[entry["corpus"]] = entry
    atomic_write(path, json.dumps(data, indent=1, sort_keys=True) + "\n")
