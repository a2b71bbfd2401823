"""``bench perf`` (benchmark/trial/perf.py): every ratio measured in one process, and the passes it reports are
the backends' own accounting."""

import math
import runpy
import sys
from pathlib import Path

import pytest
import torch

from benchmark.trial.perf import Setup, report
from models.layout import model_layout
from optimizers import get_backend, make_hyper
from optimizers.gauss_newton.curvature import TRUNK_PRODUCTS


@pytest.mark.slow
def test_perf_reports_every_ratio_with_the_backends_own_pass_counts():
    rows = {r["measure"]: r for r in report("tiny", k=2, reps=3, backends=["adamw", "gn", "layerwise-gn"])}
    assert {"AdamW step: harness / bare PyTorch loop", "layerwise GN step / full GN step",
            "GN inner gradient J0ᵀ(g0+H0J0Δ) / loss gradient"} <= rows.keys()
    for row in rows.values():
        assert math.isfinite(row["ratio"]) and row["ratio"] > 0 and row["seconds"] > 0
    setup = Setup("tiny", k=2)
    for name in ("gn", "layerwise-gn"):
        cls = get_backend(name)
        expected = cls.expected_costs(model_layout(setup.model(), setup.T), make_hyper(cls, {"ls_batches": 1}), 2)
        assert rows[f"{name} step / AdamW step (K=2)"]["fwd_equiv_per_step"] == pytest.approx(
            expected.forward_equivalents)


def test_the_gn_cost_script_splits_every_product_and_the_step_into_parts_that_add_up(capsys, monkeypatch):
    """The step's parts are timed inside it, so they cannot add up to more than the whole (to the printed rounding)."""
    script = Path(__file__).resolve().parent.parent / "scripts" / "gn_cost.py"
    monkeypatch.setattr(sys, "argv", ["gn_cost.py", "--micro-batch", "2", "--seq-len", "16", "--k", "2", "--reps", "3"])
    threads = torch.get_num_threads()
    runpy.run_path(str(script), run_name="__main__")
    assert torch.get_num_threads() == threads  # the script times on one thread and gives the others back
    out = capsys.readouterr().out
    for product in TRUNK_PRODUCTS:
        line = next(row for row in out.splitlines() if row.strip().startswith(product))
        total = float(line.split()[1].rstrip("x"))
        parts = [float(v) for v in line.split("(")[1].rstrip(")").split()[1::2]]
        assert len(parts) == 3 and sum(parts) <= total + 0.02  # trunk, head, pull-back: within the whole
    step = out.split("in AdamW steps:")[1].splitlines()[1:]
    assert [row.split()[0] for row in step] == ["inner", "inner", "line", "rest"]
    assert all(float(row.split("(")[0].split()[-1]) >= 0 for row in step)
