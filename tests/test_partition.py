"""Parameter ownership (optimizers/partition.py): every parameter has exactly one owner."""

import pytest

from optimizers.partition import check_ownership, hidden_matrix_names, partition_parameters
from tests.helpers import tiny_model


def test_hidden_matrices_are_the_blocks_2d_weights_and_the_rest_is_everything_else():
    model = tiny_model()
    hidden, rest = partition_parameters(model)
    names = {id(p): n for n, p in model.named_parameters()}
    assert {names[id(p)] for p in hidden} == hidden_matrix_names(model)
    assert all(n.startswith("blocks.") and p.ndim == 2 for n, p in model.named_parameters() if id(p) in map(id, hidden))
    assert {names[id(p)] for p in rest} >= {"embed.weight", "head.weight", "final_norm.weight"}
    assert len(hidden) + len(rest) == len(list(model.parameters()))


def test_overlapping_or_missing_owners_are_refused():
    model = tiny_model()
    hidden, rest = partition_parameters(model)
    every = list(model.parameters())
    with pytest.raises(AssertionError, match="owned by two"):
        check_ownership([hidden, rest, hidden[:1]], every)
    with pytest.raises(AssertionError, match="1 parameters have no optimizer"):
        check_ownership([hidden, rest[1:]], every)
    stranger = next(tiny_model(seed=1).parameters())
    with pytest.raises(AssertionError, match="1 are not the model's"):
        check_ownership([hidden, rest, [stranger]], every)
