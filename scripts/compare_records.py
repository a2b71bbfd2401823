"""Compare the run records of two results folders, field by field, ignoring what may differ between two
runs of the same code on the same machine (wall times, memory high-water marks, timestamps, host, code
version) and the schema's own bookkeeping (records of older schemas are upgraded first).

    python scripts/compare_records.py RESULTS_A RESULTS_B

Prints every difference and exits 1 if there is one; exits 0 when both folders hold the same run ids with
the same curves, steps-to-target, costs and settings, bit for bit.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmark.results.store import ResultsStore  # noqa: E402

VOLATILE_RUN = {"code_version", "started_at", "finished_at", "train_seconds", "seconds_per_step", "peak_memory_mib",
                "host", "libraries", "python"}
VOLATILE_ROW = {"seconds", "train_seconds", "peak_memory_mib"}
VOLATILE_CORPUS = {"tokens_digest", "tokens_sha256"}  # provenance of the cache, named by the schema


def comparable(record: dict) -> dict:
    run = {k: v for k, v in record["run"].items() if k not in VOLATILE_RUN}
    run["corpus"] = {k: v for k, v in run.get("corpus", {}).items() if k not in VOLATILE_CORPUS}
    rows = {part: [{k: v for k, v in row.items() if k not in VOLATILE_ROW} for row in record.get(part, [])]
            for part in ("evals", "steps")}
    return {"run": run, **rows}


def differences(a: dict, b: dict, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = [f"{path}.{k}: only in {'A' if k in a else 'B'}" for k in sorted(a.keys() ^ b.keys())]
        return out + [d for k in sorted(a.keys() & b.keys()) for d in differences(a[k], b[k], f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} vs {len(b)} items"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{path}[{i}]")]
    same = a == b or (a != a and b != b)  # NaN equals NaN here
    return [] if same else [f"{path}: {a!r} != {b!r}"]


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[3].strip(), file=sys.stderr)
        return 2
    a, b = ({r["run"]["run_id"]: comparable(r) for r in ResultsStore(p).records()[0]} for p in argv)
    diffs = [f"run ids only in {side}: {sorted(ids)}" for side, ids in (("A", a.keys() - b.keys()), ("B", b.keys() - a.keys())) if ids]
    for run_id in sorted(a.keys() & b.keys()):
        diffs += [f"{run_id}{d}" for d in differences(a[run_id], b[run_id])]
    print("\n".join(diffs) if diffs else f"{len(a)} records, identical up to wall times and provenance")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
