"""Merging results (benchmark/leaderboard.py): records of many folders de-duplicated by run id, copied byte
for byte, unknown schemas refused, and the leaderboard rebuilt from the union."""

import json
import shutil

import pytest
from helpers import as_schema_1, synthetic_record

from benchmark.leaderboard import merge, write_leaderboard
from benchmark.store import ResultsStore


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


def test_merge_accepts_records_of_the_previous_schema_and_refuses_a_missing_folder(tmp_path):
    src = tmp_path / "old" / "runs"
    src.mkdir(parents=True)
    v1 = as_schema_1(synthetic_record("adamw", 1, 0))
    v1["run"]["run_id"] = "r1"
    (src / "r1.json").write_text(json.dumps(v1))
    assert merge([src.parent], tmp_path / "into")["merged"] == 1
    assert ResultsStore(tmp_path / "into").read("r1")["run"]["overrides"] == ["lr"]
    from benchmark import BenchError

    with pytest.raises(BenchError, match="not a folder"):
        merge([tmp_path / "nowhere"], tmp_path / "into")
