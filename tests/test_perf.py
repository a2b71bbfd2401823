"""``bench perf`` (benchmark/trial/perf.py): every ratio measured in one process, and the passes it reports are
the backends' own accounting."""

import math

import pytest

from benchmark.trial.perf import Setup, report
from models.layout import model_layout
from optimizers import get_backend, make_hyper


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
