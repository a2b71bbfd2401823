"""The report's frames, built from the records as the results store returns them: one row per run and one
per evaluation. A run's row holds every field of its record under its stored name (``optimizer`` is the
backend, ``workload`` the preset, ``steps_to_target`` the stored mapping), and beside them what the report
derives, under names of its own:

- ``label``: what the report calls the run's optimizer: its variant where settings were fixed on the
  command line (``muon[momentum=0.9]``, a row of its own), else the optimizer;
- ``setup``: the workload, its version, the corpus, the numerics and a tuning protocol other than the grid's,
  which a cell never pools (``cpu v7 · python-stdlib``, ``cpu v7 · python-stdlib · coordinate``);
- ``protocol``: how the run's cell was tuned, as recorded (``grid`` for a record older than the field), and
  ``base_setup``: its setup without the protocol, what the protocols of one suite share;
- ``family``: the optimizer's family as the record says it, else as the installed backend of that name
  does ("unknown" for one not installed here);
- ``setting``: the hyperparameters the trial set, with their values (a dict);
- ``lr``, ``budget`` (the step budget it ran under) and ``targets`` (its own targets, loosest first);
- ``steps_to_<t>`` and ``bracket_to_<t>``: steps to each target t and the width of its bracket (missing
  where the run never reached it: ``benchmark.report.missing`` says what that means).

Every table and figure groups by ``setup`` and ``label``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from benchmark import BenchError
from benchmark.results.record import GRID, overrides
from benchmark.results.store import ResultsStore
from optimizers.registry import registry

STEPS, BRACKET = "steps_to_", "bracket_to_"  # the derived columns of each target


def run_frames(records: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(runs, evals) of ``records``: the stored fields and the report's own columns (module docstring)."""
    runs, evals = [], []
    for record in records:
        run = record["run"]
        runs.append({**run, **derived(run)})
        evals.extend({"run_id": run["run_id"], **e} for e in record["evals"])
    return pd.DataFrame(runs), pd.DataFrame(evals)


def derived(run: dict) -> dict:
    """The report's columns of one stored run."""
    steps = run.get("steps_to_target") or {}
    return {"label": run.get("variant") or run["optimizer"], "setup": setup(run), "family": family(run),
            "protocol": protocol(run), "base_setup": setup(run, with_protocol=False),
            "setting": overrides(run), "lr": run["hparams"].get("lr"),
            "budget": (run.get("workload_config") or {}).get("max_steps"),
            "targets": sorted(steps, key=float, reverse=True),
            **{f"{STEPS}{t}": v for t, v in steps.items()},
            **{f"{BRACKET}{t}": w for t, w in (run.get("steps_to_target_bracket") or {}).items()}}


def setup(run: dict, with_protocol: bool = True) -> str:
    """What a cell never pools: the workload and its version, the corpus, the numerics and a tuning protocol
    other than the grid's (where recorded: absent in older records). Each setup compares within itself: AdamW
    tuned by coordinate descent is the baseline of the coordinate-tuned rows. Without the protocol: the base
    setup, which the robustness view compares the protocols of."""
    corpus = (run.get("corpus") or {}).get("name", "?")
    tuned = protocol(run) if with_protocol else GRID
    extra = [v for v in (run.get("numerics"), tuned) if isinstance(v, str) and v and v != GRID]
    return " · ".join([f"{run['workload']} v{run['workload_version']}", corpus, *extra])


# The tuning protocols the report knows, from the least to the most thoroughly tuned, with what each is.
PROTOCOLS = {
    GRID: "a learning-rate grid at a constant rate",
    "coordinate": "every declared hyperparameter by coordinate descent, at a constant rate",
    "wsd": "from the coordinate protocol's optimum, a warmup-stable-decay schedule, steps to target by cooldown "
           "branches",
}


def protocol_rank(name: str) -> tuple:
    """The order of protocols in every view: the known ones from the least thoroughly tuned, then others by name."""
    return (list(PROTOCOLS).index(name), "") if name in PROTOCOLS else (len(PROTOCOLS), name)


def most_thorough(names) -> str:
    """The most thoroughly tuned of ``names`` (wsd, else coordinate, else the grid); an unknown protocol only
    where no known one is present."""
    known = [n for n in names if n in PROTOCOLS]
    return max(known, key=protocol_rank) if known else min(names)


def protocol_text(name: str, article: bool = True) -> str:
    """'the wsd protocol (from the coordinate protocol's optimum, …)'; without the article, 'wsd (…)'."""
    described = f" ({PROTOCOLS[name]})" if name in PROTOCOLS else ""
    return f"the {name} protocol{described}" if article else f"{name}{described}"


def protocol(run: dict) -> str:
    """The run's tuning protocol: as recorded, else the grid's (records older than the field)."""
    stated = run.get("protocol")
    return stated if isinstance(stated, str) and stated else GRID


def family(run: dict) -> str:
    """What the record says of its optimizer's family; for records older than the field, what the installed
    backend of that name says; "unknown" for a backend not installed here."""
    stated = run.get("optimizer_family")
    if isinstance(stated, str):
        return stated
    backend = registry().get(run["optimizer"])
    return backend.family if backend is not None else "unknown"


def targets_in(columns) -> list[str]:
    """The targets that ``steps_to_<t>`` columns name, loosest first."""
    found = set()
    for column in map(str, columns):
        target = column.removeprefix(STEPS)
        if column.startswith(STEPS) and _number(target):
            found.add(target)
    return sorted(found, key=float, reverse=True)


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def load(results: Path) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """(runs, evals, skipped counts) of a results folder."""
    store = ResultsStore(results)
    if not store.runs_dir.exists():
        raise BenchError(f"no run records under {str(results)!r} (expected {str(store.runs_dir)!r})")
    records, skipped = store.records()
    runs, evals = run_frames(records)
    if runs.empty:
        raise BenchError(f"no readable run records under {str(store.runs_dir)!r}")
    return runs, evals, skipped
