"""The registry (optimizers/registry.py): backends by name, checked hyperparameters."""

import dataclasses
from dataclasses import dataclass

import pytest

from optimizers import get_backend, make_hyper, registry
from optimizers.first_order.adamw import AdamW
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


def test_every_setting_declares_its_valid_values_and_nothing_outside_them_is_built():
    from optimizers.hyper import Range, valid_values

    for name, cls in registry().items():
        for f in dataclasses.fields(cls.Hyper):
            default = getattr(cls.Hyper(), f.name)
            if not isinstance(default, bool):
                assert isinstance(valid_values(cls.Hyper, f.name), Range if isinstance(default, (int, float)) else tuple), (
                    name, f.name)
    with pytest.raises(ValueError, match=r"adamw.beta2=1.2 is outside its valid range \[0, 1\)"):
        make_hyper(get_backend("adamw"), {"beta2": 1.2})
    with pytest.raises(ValueError, match=r"muon.lr=0 is outside its valid range \(0, inf\)"):
        make_hyper(get_backend("muon"), {"lr": 0.0})
    with pytest.raises(ValueError, match="ls_rule='best' is not one of: all, first_worse"):
        get_backend("gn").Hyper(ls_rule="best")  # built in code, not only from the command line
    # a subclass that only changes a default keeps its parent's declaration
    assert valid_values(get_backend("layerwise-gn").Hyper, "ls_range") == valid_values(get_backend("gn").Hyper, "ls_range")
    assert make_hyper(get_backend("soap"), {"shampoo_beta": -1.0}).shampoo_beta == -1.0  # "< 0: use beta2" stays valid


def test_a_search_space_outside_the_valid_values_is_refused_at_registration():
    class Wild(AdamW):
        name = "wild"
        search_space = {"lr": [1e-3], "beta1": [0.9, 1.1]}

    with pytest.raises(TypeError, match=r"beta1=1.1 is outside its valid range \[0, 1\)"):
        register(Wild)
    assert "wild" not in registry()
