"""Per-step cost of the Gauss-Newton backends and of the harness, each beside its baseline in the same
run (``tox -e bench``; the ratios print at the end). The shape is the ``cpu`` preset at K=16 unless
``OPTBENCH_BENCH_PRESET`` / ``OPTBENCH_BENCH_K`` say otherwise (e.g. ``45m`` and 2 on a GPU)."""

import os

import pytest
from conftest import MEDIANS, PEAKS, peak_bytes

from benchmark.trial.perf import (
    Setup,
    backend_stepper,
    bare_adamw_stepper,
    gn_product_and_gradient,
    harness_adamw_seconds,
)


@pytest.fixture(scope="module")
def setup(device):
    preset = os.environ.get("OPTBENCH_BENCH_PRESET", "cpu")
    return Setup(preset, k=int(os.environ.get("OPTBENCH_BENCH_K", "16")), device=device.type)


def test_loss_gradient(measure, setup):
    measure("loss_gradient", gn_product_and_gradient(setup)[1], rounds=20)


@pytest.mark.parametrize("product", ["double_backward", "jvp", "forward_ad"])
def test_gn_inner_gradient(measure, setup, product):
    name = "gn_inner_gradient" + ("" if product == "double_backward" else f"_{product}")
    measure(name, gn_product_and_gradient(setup, product)[0], rounds=20)


@pytest.mark.parametrize("name, backend, hp", [
    ("adamw_step", "adamw", {}),
    ("gn_step", "gn", {"ls_batches": 1}),
    ("gn_step_forward_ad", "gn", {"ls_batches": 1, "product": "forward_ad"}),
    ("gn_step_suite", "gn", {}),
    ("layerwise_gn_step", "layerwise-gn", {"ls_batches": 1}),
])
def test_backend_step(measure, setup, name, backend, hp):
    step, _ = backend_stepper(setup, backend, **hp)
    measure(name, step)


def test_bare_adamw_step(measure, setup):
    measure("bare_adamw_step", bare_adamw_stepper(setup), rounds=10)


def test_harness_adamw_step(setup, device):
    """Timed by the harness's own per-step timer (a Trainer cannot run one step at a time under
    pytest-benchmark); its peak memory over a short run."""
    MEDIANS["harness_adamw_step"] = harness_adamw_seconds(setup, 13)
    PEAKS["harness_adamw_step"] = peak_bytes(lambda: harness_adamw_seconds(setup, 3), device)
