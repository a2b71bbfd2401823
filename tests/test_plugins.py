"""Backends from other packages (optimizers/registry.py, load_plugins): the example plugin in examples/optbench-lion,
installed next to optbench without touching its files, is listed, keeps the contract, runs in a sweep
and its report; without it everything still works; a broken plugin is one line of ``bench list``."""

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from benchmark.testing import check_backend
from optimizers.first_order.adamw import AdamW, AdamWHyper
from tests.helpers import bench_process

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "optbench-lion"


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    """The example installed into a folder of its own (pip --target), put on the path of the commands."""
    target, source = tmp_path_factory.mktemp("site"), tmp_path_factory.mktemp("src") / "optbench-lion"
    shutil.copytree(EXAMPLE, source)  # a build leaves build/ and *.egg-info beside the sources: not in the repo
    out = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                          "--target", str(target), str(source)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return {"PYTHONPATH": os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")])}


@pytest.mark.slow
def test_an_installed_plugin_is_listed_runs_the_contract_and_a_sweep(installed, tmp_path, text_data):
    listed = bench_process("list", env=installed)
    assert listed.returncode == 0 and "lion" in listed.stdout and "(plugin: optbench-lion)" in listed.stdout
    own = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLE / "tests")],
                         capture_output=True, text=True, env={**os.environ, **installed}, timeout=900)
    assert own.returncode == 0, own.stdout + own.stderr
    R = tmp_path / "R"
    run = bench_process("run", "--preset", "smoke", "--workload", "max_steps=12", "--optimizers", "adamw,lion",
                        "--data", text_data, "--results", str(R),
                "--accelerator", "cpu", "--seeds", "1", "--tune-budget", "1", env=installed)
    assert run.returncode == 0, run.stderr
    assert "lion lr=0.0003 K=1 seed=0" in run.stderr and "lion lr=0.0003 K=4 seed=0" in run.stderr
    rep = bench_process("report", "--results", str(R), "--out", str(tmp_path / "O"), env=installed)
    assert rep.returncode == 0, rep.stderr
    assert "| lion |" in (tmp_path / "O" / "leaderboard.md").read_text()
    # uninstalled: the built-ins work, and the report still reads the plugin's records
    assert "lion" not in bench_process("list").stdout
    again = bench_process("report", "--results", str(R), "--out", str(tmp_path / "O2"))
    assert again.returncode == 0 and "| lion |" in (tmp_path / "O2" / "leaderboard.md").read_text()


@pytest.mark.slow
def test_a_broken_plugin_is_one_line_and_the_builtins_still_load(tmp_path):
    dist = tmp_path / "broken_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[optbench.backends]\nghost = no_such_module:Ghost\n"
                                           "notabackend = os:path\n")
    out = bench_process("list", env={"PYTHONPATH": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    ghost = [line for line in lines if line.strip().startswith("ghost")]
    assert len(ghost) == 1 and "broken plugin, not loaded" in ghost[0] and "No module named 'no_such_module'" in ghost[0]
    assert any("notabackend" in line and "is not a subclass of optimizers.Backend" in line for line in lines)
    assert all(any(line.strip().startswith(n) for line in lines) for n in ("adamw", "gn", "muon", "soap"))


class _Forgetful(AdamW):
    """AdamW whose saved state loses the moments: a resumed run would take another step."""

    name = "forgetful"

    def state_dict(self):
        return {"step_count": self.step_count, "optimizers": [{"state": {}, "param_groups": o.state_dict()["param_groups"]}
                                                              for o in self.optimizers]}


class _Frozen(AdamW):
    name = "frozen"


@dataclass(frozen=True)
class _UndeclaredHyper(AdamWHyper):
    beta3: float = 0.5  # a setting without the values it may take


class _Undeclared(AdamW):
    name = "undeclared"
    Hyper = _UndeclaredHyper


class _Miscounted(AdamW):
    name = "miscounted"

    @classmethod
    def expected_costs(cls, model, hp, k):
        return super().expected_costs(model, hp, k + 1)


def test_the_contract_catches_what_it_promises_to(token_data):
    _, data = token_data
    check_backend(AdamW, data)
    with pytest.raises(AssertionError, match="restored from its state_dict took another step"):
        check_backend(_Forgetful, data)
    with pytest.raises(AssertionError, match="the training loss did not fall"):
        check_backend(_Frozen, data, hp={"lr": 1e-12})
    with pytest.raises(AssertionError, match="counted forward=1"):
        check_backend(_Miscounted, data)
    with pytest.raises(AssertionError, match=r"undeclared.beta3 declares no valid range: declare it as hyper\(0.5, ...\)"):
        check_backend(_Undeclared, data)
    with pytest.raises(TypeError, match="name must be a non-empty string"):
        check_backend(type("Nameless", (AdamW,), {"__module__": __name__, "name": property()}), data)
    assert AdamWHyper().lr > 0
