"""Benchmarks of per-step cost, run by ``tox -e bench`` (not by the test command): each measures ours and
its baseline in the same run and the session ends with their ratios, time and peak memory side by side.

Peak memory is the most bytes of tensors alive at once: ``torch.cuda.max_memory_allocated`` on a GPU; on
CPU, the allocations and frees the PyTorch profiler records, replayed in order."""

from __future__ import annotations

import os

import pytest
import torch

from benchmark.trial.perf import peak_bytes

MEDIANS: dict[str, float] = {}
PEAKS: dict[str, float] = {}
# (what, ours, baseline): the ratios the issues track
PAIRS = [
    ("GN inner gradient / loss gradient", "gn_inner_gradient", "loss_gradient"),
    ("GN inner gradient, JVP product / double-backward product", "gn_inner_gradient_jvp", "gn_inner_gradient"),
    ("GN inner gradient, forward-AD product / loss gradient", "gn_inner_gradient_forward_ad", "loss_gradient"),
    ("GN step / AdamW step (one line-search batch)", "gn_step", "adamw_step"),
    ("GN step, forward-AD product / AdamW step (one line-search batch)", "gn_step_forward_ad", "adamw_step"),
    ("GN step / AdamW step (line search on K batches, as the suite runs it)", "gn_step_suite", "adamw_step"),
    ("layerwise GN step / full GN step", "layerwise_gn_step", "gn_step"),
    ("AdamW step through the harness / bare PyTorch loop", "harness_adamw_step", "bare_adamw_step"),
]


@pytest.fixture(scope="session")
def device() -> torch.device:
    return torch.device(os.environ.get("OPTBENCH_BENCH_DEVICE", "cuda" if torch.cuda.is_available() else "cpu"))


@pytest.fixture
def measure(benchmark, device):
    """``measure(name, fn)``: benchmark ``fn`` and record its median seconds and peak memory under ``name``."""

    def run(name: str, fn, rounds: int = 5) -> None:
        PEAKS[name] = peak_bytes(fn, device)
        benchmark.extra_info["peak_mib"] = PEAKS[name] / 2**20
        benchmark.pedantic(fn, rounds=rounds, warmup_rounds=1, iterations=1)
        if benchmark.stats is not None:
            MEDIANS[name] = benchmark.stats.stats.median

    return run


def pytest_terminal_summary(terminalreporter):
    rows = [(what, MEDIANS[a] / MEDIANS[b], PEAKS[a] / max(PEAKS[b], 1.0))
            for what, a, b in PAIRS if a in MEDIANS and b in MEDIANS]
    if not rows:
        return
    terminalreporter.section("ours / baseline, measured in this run")
    for what, time_ratio, memory_ratio in rows:
        terminalreporter.write_line(f"{what:72s} time {time_ratio:5.2f}   peak memory {memory_ratio:5.2f}")
