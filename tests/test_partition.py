"""Parameter ownership (optimizers/partition.py): every parameter has exactly one owner."""

import pytest

from optimizers.partition import check_ownership, hidden_matrix_names, muon_split
from tests.helpers import tiny_model


def test_the_release_split_hidden_matrices_embedding_and_head_and_vectors():
    model = tiny_model()
    split = muon_split(model)
    params = dict(model.named_parameters())
    assert split.embed_head == ["embed.weight", "head.weight"]
    assert set(split.hidden) == hidden_matrix_names(model)
    assert all(n.startswith("blocks.") and params[n].ndim == 2 for n in split.hidden)
    assert {"blocks.0.attn.wq.weight", "blocks.1.mlp.down.weight"} <= set(split.hidden)
    assert all(params[n].ndim == 1 for n in split.vectors) and "final_norm.weight" in split.vectors
    assert sorted(split.hidden + split.embed_head + split.vectors) == sorted(params)


def test_overlapping_or_missing_owners_are_refused():
    model = tiny_model()
    hidden, embed_head, vectors = muon_split(model).select(dict(model.named_parameters()))
    every = list(model.parameters())
    check_ownership([hidden, embed_head, vectors], every)
    with pytest.raises(AssertionError, match="owned by two"):
        check_ownership([hidden, embed_head, vectors, hidden[:1]], every)
    with pytest.raises(AssertionError, match="1 parameters have no optimizer"):
        check_ownership([hidden, embed_head, vectors[1:]], every)
    stranger = next(tiny_model(seed=1).parameters())
    with pytest.raises(AssertionError, match="1 are not the model's"):
        check_ownership([hidden, embed_head, vectors, [stranger]], every)
