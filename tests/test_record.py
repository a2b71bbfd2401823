"""The run record (benchmark/results/record.py): provenance, and older schemas upgraded without loss."""

import re

import torch

from benchmark.results.record import SCHEMA_VERSION, code_version, overrides, upgrade
from benchmark.trial.writer import environment


def test_the_environment_names_code_libraries_and_device():
    env = environment(torch.device("cpu"))
    assert re.fullmatch(r"\d+\.\d+\.\d+(\+[0-9a-f]{12}(\.dirty)?)?", code_version())
    assert env["libraries"]["torch"] == torch.__version__ and env["libraries"]["lightning"]
    assert env["device"]["type"] == "cpu" and env["device"]["count"] >= 1 and env["host"]


def test_a_schema_1_record_keeps_its_setting_and_loses_only_the_copies():
    v1 = {"schema_version": 1, "run": {"run_id": "a", "hparams": {"lr": 0.03, "beta2": 0.95, "grad_clip": 1.0},
                                       "hparam_overrides": {"lr": 0.03}, "lr": 0.03}, "evals": []}
    v2 = upgrade(v1)
    assert v2["schema_version"] == SCHEMA_VERSION
    assert v2["run"] == {"run_id": "a", "hparams": v1["run"]["hparams"], "overrides": ["lr"]}
    assert overrides(v2["run"]) == v1["run"]["hparam_overrides"]
    assert upgrade(v2) == v2 and v1["run"]["lr"] == 0.03  # idempotent, and the input is left as it was
