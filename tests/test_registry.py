"""The registry (optimizers/registry.py): backends by name, checked hyperparameters."""

from dataclasses import dataclass

import pytest

from optimizers import get_backend, make_hyper, registry
from optimizers.adamw import AdamW
from optimizers.registry import register, unregister


def test_registry_declares_search_spaces_and_rejects_unknown_names():
    for name, cls in registry().items():
        assert "lr" in cls.search_space and len(cls.search_space["lr"]) >= 3, name
    with pytest.raises(KeyError, match="valid: adamw, gn, gn-prox-linear, layerwise-gn, muon, soap"):
        get_backend("nope")
    with pytest.raises(ValueError, match="no hyperparameter"):
        make_hyper(get_backend("adamw"), {"momentum": 0.9})
    with pytest.raises(ValueError, match="must be a number"):
        make_hyper(get_backend("adamw"), {"lr": "fast"})
    with pytest.raises(ValueError, match="must be an integer"):
        make_hyper(get_backend("soap"), {"precondition_frequency": 2.5})
    with pytest.raises(ValueError, match="must be true or false"):
        make_hyper(get_backend("muon"), {"nesterov": 1})
    assert make_hyper(get_backend("soap"), {"precondition_frequency": 4.0}).precondition_frequency == 4


def test_registering_checks_the_name_and_the_search_space():
    with pytest.raises(ValueError, match="registered twice"):
        register(AdamW)

    @dataclass(frozen=True)
    class Hyper:
        lr: float = 1.0

    class Bad(AdamW):
        name = "bad"
        search_space = {"momentum": [0.9]}

    Bad.Hyper = Hyper
    with pytest.raises(TypeError, match="unknown fields"):
        register(Bad)
    Bad.search_space = {"lr": [1.0]}
    try:
        assert register(Bad) is Bad and get_backend("bad") is Bad
    finally:
        unregister("bad")
    assert "bad" not in registry()
