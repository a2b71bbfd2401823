"""GPU checks (run by scripts/gpu_check.sh on a lent H100/H200; skipped without CUDA)."""

import pytest
import torch

from optimizers import get_backend, make_hyper
from tests.helpers import Drawer, backend_for, context, flat_params, real_batches, tiny_model

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def pydoc_data():
    """Python's own docs: needs no `datasets` (absent from the GPU image) and no shared corpus."""
    import warnings

    from benchmark.data.corpus import resolve_corpus
    from benchmark.data.tokens import prepare

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return prepare(resolve_corpus("pydoc-topics", None, True), 512, None, None, 200_000)


@pytest.mark.parametrize("name", ["adamw", "muon", "soap", "gn", "layerwise-gn"])
def test_a_step_on_the_gpu_matches_the_cpu(name, pydoc_data):
    data = pydoc_data
    torch.backends.cuda.matmul.allow_tf32 = False
    results = []
    for device in ("cpu", "cuda"):
        model = tiny_model().to(device)
        cls = get_backend(name)
        backend = backend_for(cls, model, make_hyper(cls, {}), 10)
        batches = [b.to(device) for b in real_batches(data, 2, 4, 16, 128)]
        drawer = Drawer(data, 4, 16, 128)
        backend.step(context(model, batches, lambda n, d=drawer, dev=device: [b.to(dev) for b in d(n)]))
        results.append(torch.tensor(flat_params(model.cpu())))
    # Muon's Newton-Schulz runs in bf16 on both devices with different kernels: a few 1e-4 differences
    torch.testing.assert_close(results[1], results[0], rtol=1e-3, atol=5e-4)


def test_the_harness_runs_gauss_newton_on_the_gpu(tmp_path):
    import warnings

    from benchmark.report.frames import run_frames
    from benchmark.results.store import ResultsStore
    from benchmark.sweep.suite import run_suite
    from benchmark.trial.hardware import Hardware

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_suite("iteration-complexity", "smoke", "adamw,gn,layerwise-gn", 1, "pydoc-topics", tmp_path,
                  Hardware("gpu"), tune_budget=1)
    runs, _ = run_frames(ResultsStore(tmp_path).records()[0])
    assert len(runs) >= 6 and runs["status"].isin(["reached", "budget", "pruned"]).all()
    assert all(d["type"] == "cuda" for d in runs["device"])
