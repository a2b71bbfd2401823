"""Peak memory of a real step (benchmark/trial/perf.step_peak, scripts/step_memory.py): the profiler's
allocations replayed, a GN step's activations cut by sub-batching its inner gradient, and the script's fit
and extrapolation from the figures it measured."""

import json
import runpy
import sys
from pathlib import Path

import pytest

from benchmark.sweep.estimate import memory_bytes
from benchmark.trial.perf import step_peak
from models.transformer import model_config
from optimizers import get_backend, make_hyper

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "step_memory.py"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["gn"])  # layerwise GN's pieces take the same path (curvature.group_gradients)
def test_sub_batches_cut_a_gn_steps_peak_where_activations_dominate(name):
    # the cpu model with 16 sequences of 64 tokens: the activations (about 1.2 MiB a sequence under double
    # backward) outweigh the state (about 6 MiB), so one sequence at a time holds well under 60% of the peak
    whole, _ = step_peak("cpu", name, 16, 64)
    pieces, _ = step_peak("cpu", name, 16, 64, sub_batch=1)
    assert pieces < 0.6 * whole


@pytest.mark.slow
def test_the_script_fits_and_extrapolates_what_it_measured(tmp_path, monkeypatch, capsys):
    out = tmp_path / "memory.json"
    monkeypatch.setattr(sys, "argv", ["step_memory.py", "--preset", "cpu", "--seq-len", "64", "--sequences", "2,6",
                                      "--to", "32", "--optimizers", "adamw,gn", "--set", "gn.sub_batch=2",
                                      "--json", str(out)])
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(SCRIPT), run_name="__main__")
    assert done.value.code == 0
    rows = {r["optimizer"]: r for r in json.loads(out.read_text())}
    assert rows["gn"]["settings"] == {"sub_batch": 2} and rows["adamw"]["settings"] == {}
    for r in rows.values():
        measured = {int(m): v for m, v in r["measured_gib"].items()}
        slope = (measured[6] - measured[2]) / 4  # two points: the line through them
        assert r["per_sequence_gib"] == pytest.approx(slope, rel=1e-9, abs=1e-12)
        assert r["extrapolated_gib"] == pytest.approx(measured[2] + 30 * slope, rel=1e-9, abs=1e-12)
        assert set(r["model_gib"]) == {"2", "6", "32"}
    table = capsys.readouterr().out
    assert "gn" in table and "sub_batch=2" in table and "(fit:" in table


@pytest.mark.slow
@pytest.mark.parametrize(("name", "hp"), [("adamw", {}), ("gn", {}), ("gn", {"sub_batch": 1}), ("gn", {"product": "forward_ad"})])
def test_the_memory_model_is_within_15_percent_of_a_real_steps_peak_at_a_small_shape(name, hp):
    """The dry run's memory model (fitted at 45m and 150m, 1024 tokens) against a step measured at another shape:
    the 17m model, 3 sequences of 128 tokens (the note gives the paper's shapes)."""
    measured, _ = step_peak("17m", name, 3, 128, **hp)
    cls = get_backend(name)
    modelled = memory_bytes(model_config("17m", max_seq_len=128), cls, make_hyper(cls, hp), 3, 128)
    assert modelled == pytest.approx(measured, rel=0.15)
