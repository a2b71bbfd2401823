"""One contract for every backend: each built-in one runs ``benchmark.testing.check_backend``, the same check a
plugin author runs on theirs (tests/test_plugins.py shows it catches what it promises to)."""

import pytest

from benchmark.testing import check_backend
from optimizers import get_backend, registry
from optimizers.first_order import FirstOrder

BUILT_IN = ("adamw", "gn", "gn-prox-linear", "layerwise-gn", "muon", "soap")


def test_the_built_ins_are_registered():
    assert set(BUILT_IN) <= set(registry())


@pytest.mark.parametrize("name", BUILT_IN)
def test_a_built_in_backend_passes_the_plugin_contract(name, token_data):
    check_backend(get_backend(name), token_data[1])


def test_gauss_newton_is_not_an_accumulation_method():
    """K inner steps are sequential by design: GN's contract is the tests in test_gn.py instead."""
    assert not issubclass(get_backend("gn"), FirstOrder) and not get_backend("gn").accumulates
