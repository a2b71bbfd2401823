"""The command line (benchmark/cli.py) through its entry point, in this process (its own process where the
process is what is tested: tests/test_failures.py, tests/test_plugins.py, tests/test_suite.py), end to end
through a real Trainer on real text."""

import json

import pandas as pd
import pytest

from benchmark.report.figures import FIGURES
from benchmark.report.frames import run_frames
from benchmark.results.store import ResultsStore
from tests.helpers import bench


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--optimizers", "nope"], "unknown optimizer 'nope'; valid: adamw"),
        (["--preset", "huge"], "unknown preset 'huge'; valid: smoke, cpu, gpu, 45m, 150m"),
        (["--suite", "other"], "unknown suite 'other'; valid: iteration-complexity"),
        (["--data", "/no/such/dir"], "does not exist"),
        (["--data", "bogus"], "unknown corpus 'bogus'"),
        (["--optimizers", ""], "--optimizers names no optimizer"),
        (["--optimizers", "adamw,,gn"], "--optimizers 'adamw,,gn' has an empty name"),
        (["--optimizers", "adamw,adamw"], "names an optimizer twice"),
        (["--seeds", "0"], "Invalid value for '--seeds'"),
        (["--devices", "0"], "Invalid value for '--devices'"),
        (["--tune-budget", "0"], "Invalid value for '--tune-budget'"),
        (["--no-such-option"], "No such option: --no-such-option"),
        (["--set", "adamw.lrr=1"], "adamw has no hyperparameter 'lrr'; valid: "),
        (["--grid", "adamw.lr=0.1,x"], "adamw.lr must be a float, got 'x'"),
        (["--logger", "mlflow"], "unknown logger 'mlflow'; valid: csv, tensorboard, wandb, none"),
        (["--workload", "nope=1"], "--workload: 'nope' is not a workload setting; valid: model, "),
        (["--workload", "ks=1,x"], "--workload ks=1,x: expected a value like"),
        (["--workload", "version=9"], "--workload: 'version' is not a workload setting"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, args, needle):
    out = bench("run", "--suite", "iteration-complexity", "--results", str(tmp_path / "R"), *args)
    assert out.returncode == 2, out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and needle in lines[0], out.stderr
    assert not (tmp_path / "R").exists()


def test_a_results_path_that_is_a_file_is_one_line(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    for args in (["run", "--dry-run"], ["report"], ["calibrate"]):
        out = bench(*args, "--results", str(tmp_path / "file"))
        assert out.returncode == 2 and out.stderr.strip().splitlines() == [
            f"error: results folder {str(tmp_path / 'file')!r}: {str(tmp_path / 'file')!r} is a file, not a folder"], out.stderr


def test_a_logger_that_is_not_installed_is_one_line(tmp_path):
    import importlib.util

    if importlib.util.find_spec("wandb"):
        pytest.skip("wandb is installed here")
    out = bench("run", "--logger", "wandb", "--results", str(tmp_path / "R"))
    assert out.returncode == 2 and out.stderr.strip().splitlines() == [
        "error: --logger wandb needs the wandb package: pip install wandb"]


def test_version_is_the_code_version_records_carry():
    from benchmark.results.record import code_version

    out = bench("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"optbench {code_version()}"


def test_report_on_missing_results_is_one_line(tmp_path):
    out = bench("report", "--results", str(tmp_path / "none"), "--out", str(tmp_path / "O"))
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1


def test_list_names_everything():
    out = bench("list")
    assert out.returncode == 0
    for word in ("iteration-complexity", "smoke", "cpu", "45m", "150m", "adamw", "pydoc-topics", "c4"):
        assert word in out.stdout
    from benchmark.data.corpus import stdlib_corpus
    from benchmark.workload.presets import get_workload

    # a preset as a run without --data uses it: the version and targets calibrated on the embedded corpus
    for preset in ("smoke", "cpu"):
        w = get_workload(preset, stdlib_corpus().key())
        line = next(line for line in out.stdout.splitlines() if line.split()[:1] == [preset])
        targets = ", ".join(f"{t:g}" for t in w.targets)
        assert f" v{w.version} " in line and f"targets {targets} ({w.targets_source})" in line, line


@pytest.mark.slow
def test_smoke_suite_end_to_end(tmp_path, text_data):
    R, out_dir = tmp_path / "R", tmp_path / "O"
    args = ["run", "--suite", "iteration-complexity", "--preset", "smoke", "--workload", "max_steps=16", "--optimizers",
            "adamw", "--data", text_data, "--results", str(R), "--accelerator", "cpu", "--seeds", "2"]
    first = bench(*args)
    assert first.returncode == 0, first.stderr
    runs, evals = run_frames(ResultsStore(R).records()[0])
    # 3 grid settings x 2 batch sizes, any extensions of a grid whose best sat at an edge, 1 seed rerun each
    tuned = runs[runs["role"] == "tune"]
    assert set(runs["k"]) == {1, 4} and len(tuned) >= 6 and (runs["role"] == "seed").sum() == 2
    assert (tuned["reason"] == "grid").sum() == 6 and tuned["reason"].str.startswith(("grid", "extension")).all()
    assert runs["status"].isin(["reached", "budget", "pruned"]).all()
    from benchmark.data.corpus import resolve_corpus
    from benchmark.workload.presets import get_workload

    corpus = resolve_corpus(text_data, None, True)
    # shipped targets, or those the run calibrated first (another Python's standard library)
    workload = get_workload("smoke", corpus.key(), R / "targets.json")
    assert workload.targets_source.startswith("calibrated")
    loose = f"{workload.targets[0]:g}"
    assert runs[f"steps_to_{loose}"].notna().any()
    assert evals.groupby("run_id")["step"].min().eq(0).all()
    rec = json.loads(next((R / "runs").glob("*.json")).read_text())["run"]
    for field in ("code_version", "libraries", "device", "corpus", "workload_config", "hparams", "costs"):
        assert field in rec
    assert rec["corpus"]["name"] == corpus.name and rec["corpus"]["fingerprint"] == corpus.fingerprint()
    assert 0 < rec["tokens_read"] <= rec["tokens_available"]  # one epoch at most
    assert rec["costs"]["backward"] == rec["costs"]["forward"] > 0  # AdamW: one backward per forward
    mtimes = {p: p.stat().st_mtime_ns for p in (R / "runs").glob("*.json")}
    (R / "runs" / "noise.json").write_bytes(b"\x80\x81\xfe" * 50)  # files that cannot be used: the sweep goes on
    (R / "runs" / "half.json").write_text('{"schema_version": 2, "run": {')

    second = bench(*args)
    assert second.returncode == 0, second.stderr
    assert "skipped 2 record files that cannot be used: 1 not JSON, 1 not UTF-8" in second.stderr
    assert f"tuning: {len(tuned)} of {len(tuned)} trials already have records" in second.stderr
    assert "seeds: 2 of 2 trials already have records" in second.stderr
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes

    rep = bench("report", "--results", str(R), "--out", str(out_dir))
    assert rep.returncode == 0, rep.stderr
    assert "skipped 2 record files" in rep.stderr
    md = (out_dir / "leaderboard.md").read_text()
    assert f"steps to validation loss {loose}" in md and "| adamw |" in md
    for fig in FIGURES:
        assert (out_dir / f"{fig}.png").stat().st_size > 10_000
        assert (out_dir / f"{fig}.svg").exists()
    assert (out_dir / "index.html").stat().st_size > 50_000
    summary = pd.read_csv(out_dir / "summary.csv")
    assert set(summary["k"]) == {1, 4}


@pytest.mark.parametrize("preset", ["45m", "150m"])
def test_paper_presets_print_their_plan_offline(preset):
    out = bench("run", "--preset", preset, "--dry-run", env={"OPTBENCH_OFFLINE": "1"})
    assert out.returncode == 0, out.stderr
    assert "GiB/dev" in out.stdout and "K=122" in out.stdout and "PFLOP" in out.stdout


def test_the_gpu_preset_plans_about_an_hour_of_one_gpu_offline():
    import re

    out = bench("run", "--preset", "gpu", "--dry-run", env={"OPTBENCH_OFFLINE": "1"})
    assert out.returncode == 0, out.stderr
    hours = float(re.search(r"about ([0-9.]+) h of GPU time", out.stdout).group(1))
    assert 0.6 <= hours <= 1.4 and "54 trials" in out.stdout and "36 seed reruns" in out.stdout
