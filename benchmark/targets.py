"""Calibrated targets (``bench calibrate``), versioned in ``benchmark/targets.json``: per preset and corpus,
the target losses, the workload version they belong to, and the command that produced them."""

from __future__ import annotations

import json
from pathlib import Path

from benchmark.files import atomic_write

TARGETS_FILE = Path(__file__).with_name("targets.json")


def load_targets(path: Path | None = None) -> dict:
    """preset -> corpus name -> entry (targets, version, calibrated_at, command, ...)."""
    path = path or TARGETS_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def calibrated_entry(preset: str, corpus: str | None, path: Path | None = None) -> dict | None:
    return load_targets(path).get(preset, {}).get(corpus or "")


def write_entry(preset: str, entry: dict, path: Path | None = None) -> None:
    """Add or replace the entry of (preset, entry["corpus"]), keeping every other entry."""
    path = path or TARGETS_FILE
    data = load_targets(path)
    data.setdefault(preset, {})[entry["corpus"]] = entry
    atomic_write(path, json.dumps(data, indent=1, sort_keys=True) + "\n")
