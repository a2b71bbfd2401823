"""Which optimizer owns which parameter. Every parameter has exactly one owner: the groups of a backend
cover the model's trainable parameters and never overlap (asserted wherever parameters are split)."""

from __future__ import annotations

from torch import nn


def hidden_matrix_names(model: nn.Module) -> set[str]:
    """Names of the hidden 2-D matrices of the transformer blocks (not the embedding nor the head)."""
    embed_head = {id(p) for m in (model.embed, model.head) for p in m.parameters()}
    return {n for n, p in model.named_parameters() if p.ndim == 2 and id(p) not in embed_head}


def partition_parameters(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """Hidden 2-D matrices of the transformer blocks vs everything else (embedding, head, norms)."""
    hidden_names = hidden_matrix_names(model)
    hidden, rest = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (hidden if name in hidden_names else rest).append(p)
    check_ownership([hidden, rest], [p for p in model.parameters() if p.requires_grad])
    return hidden, rest


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
