"""``bench calibrate``: targets the AlgoPerf way. Tuned AdamW (the suite's own tuning over AdamW's search
space, run to the full step budget with no target) at every K of the workload, over seeds; the tightest
target is the loss that tuned AdamW reaches within the budget at *every* K (the worst of the per-K
medians), so no batch size is censored by construction; looser targets sit at 25% and 50% of the way
back to the initial loss. The result is written into ``benchmark/targets.json`` under a new workload
version, so records made against the old targets never mix with the new ones."""

from __future__ import annotations

import datetime as dt
import json
import math
import statistics
from dataclasses import replace
from pathlib import Path

from benchmark.data import prepare, resolve_corpus
from benchmark.runner import _run_trials
from benchmark.store import ResultsStore
from benchmark.suites import tuning_grid
from benchmark.trial import Hardware, Trial
from benchmark.workloads import TARGETS_FILE, get_workload


def calibrate(preset: str, data: str | None, seeds: int, results, accelerator: str = "auto") -> dict:
    w = get_workload(preset)
    corpus = resolve_corpus(data, w.hub_corpus, w.allow_builtin_corpus)
    base = get_workload(preset, corpus.name)
    w = replace(base, targets=(), targets_source="calibration run (no target)")
    prepared = prepare(corpus, w.vocab_size, w.train_chars, w.validation_chars, w.tokenizer_chars,
                       w.pretrained_tokenizer)
    store = ResultsStore(results)
    key = prepared.corpus.key()
    tune = [Trial("calibrate", w, "adamw", hp, k, 0, role="tune", corpus=key) for k in w.ks for hp in tuning_grid("adamw")]
    hw = Hardware(accelerator=accelerator)
    _run_trials(tune, w, prepared, store, hw, "calibration tuning")
    records, _ = store.records()
    by_id = {r["run"]["run_id"]: r for r in records}

    def final(run_id):
        loss = by_id[run_id]["run"]["final_val_loss"]
        return math.inf if loss is None or not math.isfinite(loss) else loss

    per_k, initial = {}, []
    for k in w.ks:
        cell = [t for t in tune if t.k == k]
        best = min(cell, key=lambda t: (final(t.run_id), t.run_id))
        reruns = [Trial("calibrate", w, "adamw", best.hparams, k, s, role="seed", corpus=key) for s in range(1, seeds)]
        _run_trials(reruns, w, prepared, store, hw, f"calibration seeds K={k}")
        records, _ = store.records()
        by_id = {r["run"]["run_id"]: r for r in records}
        losses = [final(t.run_id) for t in (best, *reruns)]
        per_k[str(k)] = {"setting": dict(best.hparams), "final_losses": losses, "median": statistics.median(losses)}
        initial += [by_id[t.run_id]["evals"][0]["val_loss"] for t in (best, *reruns)]
    tight = max(v["median"] for v in per_k.values())
    l0 = statistics.median(initial)
    targets = sorted({math.ceil(100 * (tight + f * (l0 - tight))) / 100 for f in (0.5, 0.25, 0.0)}, reverse=True)
    entry = {
        "targets": targets,
        "version": base.version + 1,
        "calibrated_at": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d"),
        "corpus": prepared.corpus.name,
        "seeds": seeds,
        "initial_loss": l0,
        "adamw": per_k,
        "command": f"bench calibrate --preset {preset} --seeds {seeds}" + (f" --data {data}" if data else ""),
    }
    _write_entry(preset, entry)
    return entry


def _load() -> dict:
    return json.loads(TARGETS_FILE.read_text()) if TARGETS_FILE.exists() else {}


def _write_entry(preset: str, entry: dict) -> None:
    data = _load()
    data.setdefault(preset, {})[entry["corpus"]] = entry
    tmp = Path(f"{TARGETS_FILE}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    tmp.replace(TARGETS_FILE)
