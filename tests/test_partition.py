"""Parameter ownership (optimizers/partition.py): every parameter has exactly one owner; roles and stages come
from the model's declared interface (models/layout.py)."""

import pytest
import torch
from torch import nn

from models.layout import model_layout
from optimizers.partition import check_ownership, muon_split
from tests.helpers import tiny_model


def _split(model):
    return muon_split(model_layout(model, model.cfg.max_seq_len))


def test_the_release_split_hidden_matrices_embedding_and_head_and_vectors():
    model = tiny_model()
    split = _split(model)
    params = dict(model.named_parameters())
    assert split.embed_head == ["embed.weight", "head.weight"]
    assert all(n.startswith("blocks.") and params[n].ndim == 2 for n in split.hidden)
    assert {"blocks.0.attn.wq.weight", "blocks.1.mlp.down.weight"} <= set(split.hidden)
    assert all(params[n].ndim == 1 for n in split.vectors) and "final_norm.weight" in split.vectors
    assert sorted(split.hidden + split.embed_head + split.vectors) == sorted(params)


def test_overlapping_or_missing_owners_are_refused():
    model = tiny_model()
    hidden, embed_head, vectors = _split(model).select(dict(model.named_parameters()))
    every = list(model.parameters())
    check_ownership([hidden, embed_head, vectors], every)
    with pytest.raises(AssertionError, match="owned by two"):
        check_ownership([hidden, embed_head, vectors, hidden[:1]], every)
    with pytest.raises(AssertionError, match="1 parameters have no optimizer"):
        check_ownership([hidden, embed_head, vectors[1:]], every)
    stranger = next(tiny_model(seed=1).parameters())
    with pytest.raises(AssertionError, match="1 are not the model's"):
        check_ownership([hidden, embed_head, vectors, [stranger]], every)


class _Body(nn.Module):
    def __init__(self):
        super().__init__()
        self.w, self.g = nn.Linear(4, 4, bias=False), nn.Parameter(torch.ones(4))


class _Renamed(nn.Module):
    """Another model with the same declared interface and none of the Transformer's attribute names."""

    def __init__(self):
        super().__init__()
        self.tok, self.body, self.out = nn.Embedding(8, 4), _Body(), nn.Linear(4, 8, bias=False)

    def parameter_roles(self):
        return {"tok.weight": "embedding", "body.w.weight": "hidden", "body.g": "vector", "out.weight": "head"}

    def stage_modules(self):
        return [self.tok, self.body, self.out]

    def stage_flops(self, seq_len):
        return [0.0, 32.0, 64.0]


class _Unstaged(_Renamed):
    def stage_modules(self):
        return [self.tok, self.out]


def test_a_model_that_names_its_parts_otherwise_gets_the_same_split_from_its_declared_roles():
    layout = model_layout(_Renamed(), 4)
    assert muon_split(layout) == (["body.w.weight"], ["tok.weight", "out.weight"], ["body.g"])
    assert layout.stages.suffix_fraction(1) == 1.0 and layout.stages.suffix_fraction(2) == 64 / 96
    with pytest.raises(AssertionError, match="stages must own every parameter exactly once"):
        model_layout(_Unstaged(), 4)
