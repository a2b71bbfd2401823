"""Failing well, through the real command line in a child process: a trial that raises is a ``failed``
record with its message and step, the other trials run, the run ends with one summary line and exit 1, and
the next run retries that trial alone; Ctrl-C ends with exit 130 and leaves the trial's checkpoint to resume
from; the command line's own error handling holds whichever click the allowed typer versions bring."""

import json
import os
import signal
import subprocess
import sys

import pytest
import typer

from benchmark import cli
from benchmark.results.store import ResultsStore
from tests.helpers import kill_at_first_checkpoint


def _cmd(results, text_data, optimizers):
    return [sys.executable, "-m", "tests.failing_cli", "run", "--preset", "smoke", "--workload", "max_steps=12",
            "--optimizers", optimizers,
            "--tune-budget", "1", "--seeds", "1", "--accelerator", "cpu", "--logger", "none", "--data", text_data,
            "--results", str(results)]


def _records(results) -> dict:
    return {r["run"]["k"]: r for r in ResultsStore(results).records()[0]}


@pytest.mark.slow
def test_a_trial_that_raises_is_a_failed_record_and_only_it_is_retried(tmp_path, text_data):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    first = subprocess.run(_cmd(tmp_path, text_data, "boom"), env=env, capture_output=True, text=True, timeout=900)
    assert first.returncode == 1, first.stderr
    assert "Traceback" not in first.stderr and "AttributeError" not in first.stderr
    records = _records(tmp_path)
    failed, other = records[4]["run"], records[1]["run"]
    assert failed["status"] == "failed" and other["status"] in ("reached", "budget")  # the other trial ran
    assert failed["failure"]["type"] == "RuntimeError" and failed["failure"]["step"] == 3
    assert failed["failure"]["message"] == "boom: the third step of K=4 raises"
    assert failed["steps_run"] == 2 and [s["step"] for s in records[4]["steps"]] == [1, 2]
    traceback = (tmp_path / failed["failure"]["log"]).read_text()
    assert "Traceback" in traceback and "boom: the third step of K=4 raises" in traceback
    summary = first.stderr.strip().splitlines()[-1]
    assert summary.startswith(f"1 trial failed: {failed['run_id']} at step 3 (RuntimeError: boom"), summary
    assert str(tmp_path / failed["failure"]["log"]) in summary

    kept = (tmp_path / "runs" / f"{other['run_id']}.json").stat().st_mtime_ns
    second = subprocess.run(_cmd(tmp_path, text_data, "boom"), env={**env, "BOOM_OFF": "1"}, capture_output=True,
                            text=True, timeout=900)
    assert second.returncode == 0, second.stderr
    assert "tuning: 1 of 2 trials already have records: skipped" in second.stderr
    assert (tmp_path / "runs" / f"{other['run_id']}.json").stat().st_mtime_ns == kept
    retried = _records(tmp_path)[4]["run"]
    assert retried["run_id"] == failed["run_id"] and retried["status"] in ("reached", "budget")
    assert "failure" not in retried


@pytest.mark.slow
def test_ctrl_c_exits_130_and_the_trial_resumes_from_its_checkpoint(tmp_path, text_data):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # A process started in the background of a shell inherits SIGINT ignored (and then Python never turns it into
    # KeyboardInterrupt): the child gets the terminal's default back, as a sweep started at a prompt has it.
    proc = subprocess.Popen(_cmd(tmp_path, text_data, "adamw"), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    interrupted = kill_at_first_checkpoint(proc, tmp_path, lambda: proc.send_signal(signal.SIGINT))
    stderr = proc.stderr.read()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "interrupted: run the same command again" in stderr
    assert (tmp_path / "work" / f"{interrupted}.ckpt").exists()  # kept to resume from
    assert not list((tmp_path / "work").glob("*.claim"))  # and the trial is free for the next run
    assert not (tmp_path / "runs" / f"{interrupted}.json").exists()  # an interruption is not a record

    rerun = subprocess.run(_cmd(tmp_path, text_data, "adamw"), env=env, capture_output=True, text=True,
                           timeout=900)
    assert rerun.returncode == 0, rerun.stderr
    assert not list((tmp_path / "work").glob("*.ckpt"))
    record = json.loads((tmp_path / "runs" / f"{interrupted}.json").read_text())
    assert record["run"]["status"] in ("reached", "budget") and record["run"]["steps_run"] > 0


def _raising(exc: BaseException):
    """The real main() on a command that raises ``exc``."""
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

    @app.command()
    def go() -> None:
        raise exc

    @app.command()
    def other() -> None:  # two commands: ``go`` is a subcommand, as ``run`` is
        pass

    return app


def _usage_errors():
    import importlib

    for name in ("typer._click.exceptions", "click.exceptions"):
        try:
            yield importlib.import_module(name)
        except ImportError:
            continue


@pytest.mark.parametrize("module", list(_usage_errors()), ids=lambda m: m.__name__)
def test_usage_errors_and_interrupts_of_either_click_are_handled(module, monkeypatch, capsys):
    cases = [(module.UsageError("bad option --x"), 2, "error: bad option --x"), (KeyboardInterrupt(), 130,
             "interrupted"), (typer.Abort(), 130, "interrupted")]
    if hasattr(module, "Abort"):
        cases.append((module.Abort(), 130, "interrupted"))
    for exc, status, line in cases:
        monkeypatch.setattr(cli, "app", _raising(exc))
        monkeypatch.setattr(sys, "argv", ["bench", "go"])
        assert cli.main() == status, exc
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(line), err


def test_a_bug_of_its_own_is_a_traceback_not_a_masked_error(monkeypatch):
    monkeypatch.setattr(cli, "app", _raising(ZeroDivisionError("a real bug")))
    monkeypatch.setattr(sys, "argv", ["bench", "go"])
    with pytest.raises(ZeroDivisionError, match="a real bug"):
        cli.main()
