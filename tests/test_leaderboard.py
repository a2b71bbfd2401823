"""Merging results (benchmark/report/leaderboard.py): records of many folders de-duplicated by run id, copied byte
for byte, unknown schemas refused, and the leaderboard rebuilt from the union."""

import json
import shutil

import pytest
from helpers import as_schema_1

from benchmark.report.leaderboard import merge, write_leaderboard
from benchmark.results.store import ResultsStore
from benchmark.results.validate import record_problem
from tests.helpers import bench


@pytest.mark.slow
def test_leaderboard_merge_dedupes_and_refuses_unknown_schemas(smoke_results, tmp_path):
    artifact = tmp_path / "artifact" / "runs"
    artifact.mkdir(parents=True)
    files = sorted((smoke_results / "runs").glob("*.json"))
    for f in files[:3]:
        shutil.copy(f, artifact / f.name)
    (artifact / "future.json").write_text(json.dumps({"schema_version": 99, "run": {"run_id": "z"}, "evals": []}))
    (artifact / "bytes.json").write_bytes(b"\xff\xfe" + bytes(range(200)))
    into = tmp_path / "merged"
    first = merge([smoke_results, artifact.parent], into)
    assert first["merged"] == len(files) and first["duplicates"] == 3
    assert len(first["refused"]) == 2 and "bytes.json (not UTF-8)" in first["refused"][0]
    assert "future.json (schema version 99; this tool reads schema 1, 2)" in first["refused"][1]
    again = merge([artifact.parent], into)
    assert again["merged"] == 0 and again["duplicates"] == 3
    board = write_leaderboard(into, into / "leaderboard.json")
    assert len(board["runs"]) == len(files)
    assert ResultsStore(into).records()[1] == {}
    for f in files:  # byte for byte: provenance travels with each record
        assert (into / "runs" / f.name).read_bytes() == f.read_bytes()


@pytest.mark.slow
def test_merge_accepts_records_of_the_previous_schema_and_refuses_a_missing_folder(smoke_results, tmp_path):
    src = tmp_path / "old" / "runs"
    src.mkdir(parents=True)
    real = json.loads(sorted((smoke_results / "runs").glob("*.json"))[0].read_text())
    run_id = real["run"]["run_id"]
    (src / f"{run_id}.json").write_text(json.dumps(as_schema_1(real)))
    _copy_targets(smoke_results, src.parent)
    assert merge([src.parent], tmp_path / "into")["merged"] == 1
    assert ResultsStore(tmp_path / "into").read(run_id)["run"]["overrides"] == real["run"]["overrides"]
    from benchmark import BenchError

    with pytest.raises(BenchError, match="not a folder"):
        merge([tmp_path / "nowhere"], tmp_path / "into")


def test_a_folder_without_records_is_one_line_and_merges_nothing(tmp_path):
    # e.g. submissions/ as committed: only its README
    folder = tmp_path / "submissions"
    folder.mkdir()
    (folder / "README.md").write_text("how to submit\n")
    out = bench("leaderboard", "merge", str(folder), "--results", str(tmp_path / "into"), "--strict")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip() == f"error: no run records (*.json) in {folder}: nothing to merge"
    assert not (tmp_path / "into" / "leaderboard.json").exists()


def _copy_targets(results, folder):
    if (results / "targets.json").exists():  # targets the sweep calibrated for this Python's library
        shutil.copy(results / "targets.json", folder / "targets.json")


def _edit(record: dict, what: str) -> dict:
    run = record["run"]
    tight = min(run["steps_to_target"], key=float)
    if what == "steps":
        reached = next(t for t, v in run["steps_to_target"].items() if v is not None)
        run["steps_to_target"][reached] = run["steps_to_target"][reached] - 1
    elif what == "lr":
        run["hparams"]["lr"] *= 2
    elif what == "status":
        run["status"] = "budget" if run["steps_to_target"][tight] is not None else "reached"
    elif what == "version":
        run["workload_version"] += 1
    elif what == "final":
        run["final_val_loss"] -= 0.1
    elif what == "code":
        run["code_version"] = "my-fork"
    return record


@pytest.mark.slow
@pytest.mark.parametrize(("what", "reason"), [
    ("steps", "steps to {t} say {v}, its evaluations give"),
    ("lr", "is not the hash of its settings"),
    ("status", "status says"),
    ("version", "is not one this code knows"),
    ("final", "final validation loss says"),
    ("code", "code version 'my-fork' is not one optbench writes"),
])
def test_an_edited_record_is_refused_with_the_reason(smoke_results, tmp_path, what, reason):
    files = sorted((smoke_results / "runs").glob("*.json"))
    record = next(json.loads(f.read_text()) for f in files if any(
        v is not None for v in json.loads(f.read_text())["run"]["steps_to_target"].values()))
    src = tmp_path / "src"
    (src / "runs").mkdir(parents=True)
    _copy_targets(smoke_results, src)
    before = json.loads(json.dumps(record))
    edited = _edit(record, what)
    (src / "runs" / "edited.json").write_text(json.dumps(edited))
    shutil.copy(files[-1], src / "runs" / files[-1].name)  # an untouched one beside it
    counts = merge([src], tmp_path / "into")
    assert counts["merged"] == 1 and len(counts["refused"]) == 1
    if what == "steps":
        t = next(t for t, v in before["run"]["steps_to_target"].items() if v is not None)
        reason = reason.format(t=t, v=edited["run"]["steps_to_target"][t])
    assert "edited.json (" in counts["refused"][0] and reason in counts["refused"][0], counts["refused"]
    strict = bench("leaderboard", "merge", str(src), "--results", str(tmp_path / "strict"), "--strict")
    assert strict.returncode == 2 and "nothing merged" in strict.stderr.splitlines()[-1]
    assert not list((tmp_path / "strict").glob("runs/*.json"))


@pytest.mark.slow
def test_two_machines_merge_into_one_leaderboard_with_provenance(smoke_results, tmp_path):
    files = sorted((smoke_results / "runs").glob("*.json"))
    for i, host in enumerate(("gpu-node-1", "laptop")):
        folder = tmp_path / host
        (folder / "runs").mkdir(parents=True)
        _copy_targets(smoke_results, folder)
        for f in files[i::2]:
            rec = json.loads(f.read_text())
            rec["run"]["host"] = host
            (folder / "runs" / f.name).write_text(json.dumps(rec))
    out = bench("leaderboard", "merge", str(tmp_path / "gpu-node-1"), str(tmp_path / "laptop"),
                "--results", str(tmp_path / "into"))
    assert out.returncode == 0, out.stderr
    board = json.loads((tmp_path / "into" / "leaderboard.json").read_text())
    assert len(board["runs"]) == len(files)
    origins = {part.split(" · ")[0] for e in board["entries"] for part in e["provenance"].split("; ")}
    assert origins == {"gpu-node-1", "laptop"}
    assert all(len(part.split(" · ")) == 3 for e in board["entries"] for part in e["provenance"].split("; "))


def _wsd_record() -> dict:
    """A WSD record as a trial writes it, of a synthetic run on the smoke preset: the constant phase's curve falls
    as exp(-step / 8), up to the start of the bound its crossing of the tightest target gives, and a cooldown ends
    0.3 below it; its branches are the ones the search asks for."""
    import math
    from dataclasses import asdict
    from types import SimpleNamespace

    from benchmark.results.budgets import bound_budget, branch_start, candidate_budgets, search
    from benchmark.results.record import run_id
    from benchmark.trial.branches import outcome
    from benchmark.workload.presets import get_workload
    from optimizers import get_backend, make_hyper
    from optimizers.interface import Costs

    w, c = get_workload("smoke"), 0.2
    curve = lambda step: 4.6 + 2.0 * math.exp(-step / 8)  # noqa: E731
    budgets = candidate_budgets(w.resolution_grid(), w.max_steps, c)
    bound = bound_budget(budgets, c, [(s, curve(s)) for s in range(w.max_steps)], min(w.targets))
    stable = branch_start(bound, c)
    evals = [{"step": s, "val_loss": curve(s)} for s in range(stable + 1)]
    asked = {}

    def final_loss(n):
        start = branch_start(n, c)
        branch = {"budget": n, "start": start, "length": n - start, **Costs(n - start, n - start).as_dict(),
                  "final_val_loss": curve(n) - (0.3 if n > start else 0.0), "seconds": 0.1}
        return asked.setdefault(n, branch)["final_val_loss"]

    found, final = search(budgets, w.targets, final_loss, bound, w.max_steps)
    run = {**outcome(w, SimpleNamespace(evals=evals, status="running"), list(asked.values()), found, final),
           "workload": w.name, "workload_version": w.version, "workload_key": w.key(), "corpus_key": "",
           "workload_config": w.to_dict(), "optimizer": "adamw", "k": 1, "seed": 0, "steps_run": stable,
           "overrides": ["schedule"], "hparams": asdict(make_hyper(get_backend("adamw"), {"schedule": "wsd"})),
           "code_version": "0.1.0"}
    run["run_id"] = run_id(w.name, w.key(), "", "adamw", [("schedule", "wsd")], 1, 0)
    return {"schema_version": 2, "run": run, "evals": evals}


def _edit_wsd(record: dict, what: str) -> dict:
    run = record["run"]
    tight = f"{min(run['workload_config']['targets']):g}"
    found = next(b for b in run["branches"] if b["budget"] == run["steps_to_target"][tight])
    if what == "loss":  # the branch that reaches the tightest target first, edited to miss it
        found["final_val_loss"] = float(tight) + 0.01
    elif what == "start":
        found["start"] -= 1
    elif what == "dropped":
        run["branches"].remove(found)
    elif what == "extra":
        run["branches"].append({**found, "budget": 39, "start": 31, "length": 8})
    elif what == "steps":
        run["steps_to_target"][tight] -= 1
    elif what == "final":
        run["final_val_loss"] -= 0.1
    elif what == "status":
        run["status"] = "budget"
    return record


def test_a_wsd_record_is_accepted_with_its_steps_to_target_recomputed_from_its_branches():
    record = _wsd_record()
    run = record["run"]
    assert run["schedule"] == "wsd" and run["status"] == "reached" and len(run["branches"]) > 3
    assert all(v is not None for v in run["steps_to_target"].values())
    assert record_problem(record, []) is None


@pytest.mark.parametrize(("what", "reason"), [
    ("loss", "steps to target"),  # the branch above it, the bound's, is recorded: the search ends there
    ("start", "starts at"),
    ("dropped", "which it does not record"),
    ("extra", "its search asks for"),
    ("steps", "steps to target 5 says"),
    ("final", "final validation loss says"),
    ("status", "status says budget, its branches say reached"),
])
def test_an_edited_wsd_record_is_refused_with_the_reason(what, reason):
    why = record_problem(_edit_wsd(_wsd_record(), what), [])
    assert why is not None and reason in why, why
