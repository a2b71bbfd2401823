"""``bench``: a thin command line over the harness. Every user error is one line and exit status 2."""

from __future__ import annotations

import importlib
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Annotated

import typer

from benchmark import BenchError, make_console

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="optbench: steps-to-target benchmark for LLM optimizers.")
console = make_console(stderr=True)


def _fail(message: str) -> None:
    console.print(f"error: {message}", style="red", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(2)


@app.command("list")
def list_cmd() -> None:
    """List suites, presets, optimizers and corpora."""
    from benchmark.sweep.catalog import print_catalog

    print_catalog(make_console())


@app.command()
def run(
    suite: Annotated[str, typer.Option(help="suite to run")] = "iteration-complexity",
    preset: Annotated[str, typer.Option(help="workload preset")] = "cpu",
    optimizers: Annotated[str | None, typer.Option(help="comma-separated optimizers (default: all)")] = None,
    seeds: Annotated[int, typer.Option(min=1, help="seeds per cell (the tuned setting reruns on seeds 1..N-1)")] = 3,
    data: Annotated[str | None, typer.Option(help="corpus name or path (default: $OPTBENCH_DATA)")] = None,
    results: Annotated[Path, typer.Option(help="results folder")] = Path("results"),
    accelerator: Annotated[str, typer.Option(help="cpu, gpu or auto")] = "auto",
    devices: Annotated[int, typer.Option(min=1, help="processes / GPUs per node (DDP when > 1)")] = 1,
    num_nodes: Annotated[int, typer.Option(min=1, help="nodes (torchrun or SLURM launches them)")] = 1,
    precision: Annotated[str, typer.Option(help="32-true or bf16-mixed (GN stays fp32 unless its fp32=false)")] = "32-true",
    tf32: Annotated[bool, typer.Option(help="TF32 matmuls for fp32 work on GPUs")] = True,
    compile_model: Annotated[bool, typer.Option("--compile", help="torch.compile the model (first-order backends)")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print the trial list with its cost and exit")] = False,
    shard: Annotated[str | None, typer.Option(help="run part i of n of the trial list, as i/n")] = None,
    tuning: Annotated[str, typer.Option(help="grid (a learning-rate grid, the default suite's) or coordinate (every "
                                             "declared hyperparameter, one at a time)")] = "grid",
    tune_budget: Annotated[int | None, typer.Option(
        min=1, help="grid: settings of each backend's initial grid (3); coordinate: trials per cell (16)")] = None,
    prune: Annotated[bool, typer.Option(help="stop tuning trials that can no longer be selected")] = True,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="fix settings of an optimizer, e.g. gn.ls_rule=first_worse,muon.momentum=0.9 (repeatable)")] = None,
    logger: Annotated[str, typer.Option(help="per-step metrics besides the records: csv, tensorboard, wandb or none")] = "csv",
    grid: Annotated[list[str] | None, typer.Option(
        help="search these values of one setting, e.g. \"muon.lr=0.05,0.1,0.2\" (repeatable)")] = None,
    launcher: Annotated[str, typer.Option(help="none (here), local or slurm: a job a trial (submitit)")] = "none",
    partition: Annotated[str | None, typer.Option(help="--launcher slurm: the partition")] = None,
    job_minutes: Annotated[int, typer.Option(min=1, help="--launcher: a job's time limit in minutes")] = 120,
    workload: Annotated[list[str] | None, typer.Option(
        "--workload", help="change a field of the preset, e.g. max_steps=8 or ks=1,4 (repeatable; a workload of "
                           "its own name, never merged into a leaderboard)")] = None,
) -> None:
    """Run a suite: every trial not already in the results folder."""
    from benchmark.sweep.launcher import Launch
    from benchmark.sweep.suite import run_suite
    from benchmark.trial.loggers import check_logger
    from benchmark.trial.run import TrialFailed

    hw = _hardware(accelerator, devices, num_nodes, precision, tf32, compile_model, logger)
    try:
        check_logger(logger)
        records = run_suite(suite=suite, preset=preset, optimizers=optimizers, seeds=seeds, data=data,
                            results=results, hw=hw, dry_run=dry_run, shard=shard, tune_budget=tune_budget,
                            prune=prune, sets=set_ or [], grids=grid or [], workload_items=workload or [],
                            tuning=tuning, launch=Launch(launcher, job_minutes, partition))
    except BenchError as exc:
        _fail(str(exc))
    except TrialFailed as exc:  # several processes: the first failure ends the sweep
        records = [exc.record]
    _exit_on_failures(records, results)


def _hardware(accelerator: str, devices: int, num_nodes: int, precision: str, tf32: bool, compile_model: bool,
              logger: str):
    """The hardware a run asks for, or a one-line error."""
    from benchmark.trial.hardware import Hardware

    if precision not in ("32-true", "bf16-mixed"):  # fp16 would need a loss scaler inside every backend
        _fail(f"unknown precision {precision!r}; valid: 32-true, bf16-mixed")
    if accelerator not in ("cpu", "gpu", "cuda", "auto"):
        _fail(f"unknown accelerator {accelerator!r}; valid: cpu, gpu, auto")
    return Hardware(accelerator=accelerator, devices=devices, num_nodes=num_nodes, precision=precision, tf32=tf32,
                    compile=compile_model, logger=logger)


def _exit_on_failures(records: list[dict], results: Path) -> None:
    """One line for the trials that raised, and exit status 1; nothing when none did."""
    from benchmark.sweep.queue import failure_summary

    line = failure_summary(records, results)
    if line:
        console.print(line, style="red", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1)


@app.command()
def calibrate(
    preset: Annotated[str, typer.Option(help="workload preset")] = "cpu",
    seeds: Annotated[int, typer.Option(min=1, help="seeds of tuned AdamW")] = 2,
    data: Annotated[str | None, typer.Option(help="corpus name or path (default: $OPTBENCH_DATA)")] = None,
    results: Annotated[Path, typer.Option(help="results folder: its targets.json, its calibration/ runs")] = Path("results"),
    accelerator: Annotated[str, typer.Option(help="cpu, gpu or auto")] = "auto",
    targets: Annotated[Path | None, typer.Option(
        help="targets file to write (default: RESULTS/targets.json; the shipped benchmark/workload/targets.json only when named)")] = None,
) -> None:
    """Set a preset's target losses from tuned AdamW, for the corpus given, into the results folder's
    targets file, which `bench run --results` with the same folder reads."""
    from benchmark.results.store import ResultsStore
    from benchmark.sweep.calibrate import calibrate as run_calibration

    try:
        store = ResultsStore(results)
        entry = run_calibration(preset, data, seeds, store.calibration_dir, accelerator, targets or store.targets_path)
    except BenchError as exc:
        _fail(str(exc))
    make_console().print(f"{preset} v{entry['version']}: targets {entry['targets']} ({entry['command']})")


@app.command()
def report(
    results: Annotated[Path, typer.Option(help="results folder")] = Path("results"),
    out: Annotated[Path, typer.Option(help="report folder")] = Path("reports"),
) -> None:
    """Render the leaderboard and figures from the run records."""
    from benchmark.report.render import render

    try:
        written = render(results, out)
    except BenchError as exc:
        _fail(str(exc))
    for path in written:
        make_console().print(str(path))


leaderboard_app = typer.Typer(help="Merge results from many machines or CI artifacts.", no_args_is_help=True)
app.add_typer(leaderboard_app, name="leaderboard")


@leaderboard_app.command("merge")
def leaderboard_merge(
    sources: Annotated[list[Path], typer.Argument(help="results folders or unpacked CI artifacts")],
    results: Annotated[Path, typer.Option(help="results folder to merge into")] = Path("results"),
    out: Annotated[Path | None, typer.Option(help="leaderboard file (default: RESULTS/leaderboard.json)")] = None,
    strict: Annotated[bool, typer.Option(help="merge nothing and exit 2 when any record is refused")] = False,
) -> None:
    """Validate run records, merge them (de-duplicated by run id) and rebuild the leaderboard."""
    from benchmark.report.leaderboard import merge, write_leaderboard

    try:
        counts = merge(sources, results, strict)
        for line in counts["refused"]:
            console.print(f"refused: {line}", markup=False, highlight=False)
        if strict and counts["refused"]:
            _fail(f"{len(counts['refused'])} records refused (--strict): nothing merged")
        board = write_leaderboard(results, out or results / "leaderboard.json")
    except BenchError as exc:
        _fail(str(exc))
    make_console().print(f"merged {counts['merged']} records ({counts['duplicates']} duplicates skipped, "
                    f"{len(counts['refused'])} refused); leaderboard: {len(board['entries'])} entries from "
                    f"{len(board['runs'])} runs")


@app.command()
def perf(
    preset: Annotated[str, typer.Option(help="model preset")] = "cpu",
    k: Annotated[int, typer.Option(min=1, help="micro-batches per step")] = 4,
    reps: Annotated[int, typer.Option(min=3, help="timed repetitions per measure")] = 10,
    device: Annotated[str, typer.Option(help="cpu or cuda")] = "cpu",
    optimizers: Annotated[str | None, typer.Option(help="comma-separated backends (default: all)")] = None,
) -> None:
    """Per-step cost ratios (harness vs bare loop, each backend vs AdamW, GN product vs gradient)."""
    from rich.table import Table

    from benchmark.sweep.suite import parse_optimizers
    from benchmark.trial.perf import report as perf_report
    from models.transformer import PRESETS

    if preset not in PRESETS:
        _fail(f"unknown model preset {preset!r}; valid: {', '.join(PRESETS)}")
    try:
        names = parse_optimizers(optimizers)
    except BenchError as exc:
        _fail(str(exc))
    table = Table(title=f"bench perf: preset {preset}, K={k}, {device}")
    for col in ("measure", "ratio", "seconds", "baseline s", "fwd-equiv/step"):
        table.add_column(col, justify="left" if col == "measure" else "right")
    for row in perf_report(preset, k, reps, device, names):
        fe = row.get("fwd_equiv_per_step")
        table.add_row(row["measure"], f"{row['ratio']:.2f}", f"{row['seconds']:.4f}",
                      f"{row['baseline_seconds']:.4f}", "" if fe is None else f"{fe:.1f}")
    make_console(width=140).print(table)


def _version(value: bool) -> None:
    if value:
        from benchmark.results.record import code_version

        make_console().print(f"optbench {code_version()}", markup=False, highlight=False)
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="print the code version that records carry and exit")] = False,
          ) -> None:
    """optbench: steps-to-target benchmark for LLM optimizers."""


def _click_exceptions() -> tuple[tuple[type, ...], tuple[type, ...], tuple[type, ...]]:
    """(usage errors, no-arguments-given errors, aborts) of every click this typer may use: typer since 0.2x
    carries its own copy (``typer._click``), earlier ones use click itself; both are looked for, so that no
    version in the allowed range turns a usage error into a traceback."""
    usage, no_args, aborts = [], [], [typer.Abort]
    for name in ("typer._click.exceptions", "click.exceptions"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        usage.append(module.UsageError)
        no_args += [module.NoArgsIsHelpError] if hasattr(module, "NoArgsIsHelpError") else []
        aborts += [module.Abort] if hasattr(module, "Abort") else []
    return tuple(usage), tuple(no_args), tuple(aborts)


INTERRUPTED = 130  # the shell's status for a process ended by SIGINT


def _interrupted() -> int:
    console.print("interrupted: run the same command again to go on (a trial resumes from its last checkpoint)",
                  markup=False, highlight=False, soft_wrap=True)
    return INTERRUPTED


def main() -> int:
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    logging.getLogger("lightning.fabric").setLevel(logging.ERROR)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.formatwarning = lambda msg, cat, *a, **k: f"warning: {msg}\n"
    usage, no_args, aborts = _click_exceptions()
    try:  # a usage error (a bad option, a value out of range) is one line, as every other bad input
        result = app(prog_name="bench", standalone_mode=False)
    except KeyboardInterrupt:
        return _interrupted()
    except Exception as exc:
        if isinstance(exc, aborts):  # Ctrl-C or end of input, as click before typer's copy reports it
            return _interrupted()
        if isinstance(exc, no_args):
            make_console().print(exc.ctx.get_help() if exc.ctx else str(exc), markup=False, highlight=False)
            return 2
        if isinstance(exc, usage):
            console.print(f"error: {exc.format_message()}", style="red", markup=False, highlight=False, soft_wrap=True)
            return 2
        raise  # a bug of optbench's own: its traceback, and exit status 1
    if result == INTERRUPTED:  # typer's own copy of click returns this for a Ctrl-C
        return _interrupted()
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
