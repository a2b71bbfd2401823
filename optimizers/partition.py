"""Which optimizer owns which parameter. Every parameter has exactly one owner: the groups of a backend
cover the model's trainable parameters and never overlap (asserted wherever parameters are split).

The release splits a transformer three ways (its ``muon`` optimizer): the hidden 2-D matrices of the
blocks (Muon), the embedding and the head (AdamW), and every other parameter, the 1-D norm scales and
biases (Adam with Nesterov momentum, inside optax's muon).
"""

from __future__ import annotations

from typing import NamedTuple

from torch import nn

from optimizers.layout import EMBEDDING, HEAD, HIDDEN, VECTOR, ModelLayout


class MuonSplit(NamedTuple):
    """Parameter names by role (each list in model order)."""

    hidden: list[str]  # 2-D matrices of the transformer blocks
    embed_head: list[str]  # the embedding and the output head
    vectors: list[str]  # everything else: norm scales and biases, the final norm

    def select(self, params: dict[str, nn.Parameter]) -> tuple[list, list, list]:
        return tuple([params[n] for n in names] for names in self)


def muon_split(layout: ModelLayout) -> MuonSplit:
    """The release's three groups, from the parameters' roles (each parameter has exactly one)."""
    return MuonSplit(layout.named(HIDDEN), layout.named(EMBEDDING, HEAD), layout.named(VECTOR))


def check_ownership(groups: list[list[nn.Parameter]], every: list[nn.Parameter]) -> None:
    """The groups hold each tensor of ``every`` exactly once, and nothing else."""
    owned = [id(p) for g in groups for p in g]
    if len(owned) != len(set(owned)):
        raise AssertionError("a parameter is owned by two optimizer groups")
    if set(owned) != {id(p) for p in every}:
        raise AssertionError(f"{len({id(p) for p in every} - set(owned))} parameters have no optimizer, "
                             f"{len(set(owned) - {id(p) for p in every})} are not the model's")


def optimizer_groups(optimizers) -> list[list[nn.Parameter]]:
    """The parameters each torch optimizer holds."""
    return [[p for g in o.param_groups for p in g["params"]] for o in optimizers]
