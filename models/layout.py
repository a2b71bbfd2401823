"""The host's side of ``optimizers.layout``: a hosted model declares, besides ``forward``,

- ``parameter_roles() -> dict[str, str]``: each trainable parameter's role (``optimizers.layout.ROLES``);
- ``stage_modules() -> list[nn.Module]``: the network as a chain of stages, each a function of the previous output;
- ``stage_flops(seq_len) -> list[float]``: each stage's forward FLOPs per token, relative costs are enough;

and ``model_layout`` turns that into the ``ModelLayout`` its backend is built with, checking that roles and
stages each cover every trainable parameter exactly once."""

from __future__ import annotations

from torch import nn

from optimizers.layout import ROLES, ModelLayout, StageMap


def model_layout(model: nn.Module, seq_len: int) -> ModelLayout:
    """The layout of ``model`` for sequences of ``seq_len`` tokens (the attention's FLOPs depend on it)."""
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    roles = model.parameter_roles()
    if sorted(roles) != sorted(trainable) or not set(roles.values()) <= set(ROLES):
        raise AssertionError(f"{type(model).__name__}.parameter_roles() must give each trainable parameter one "
                             f"of {', '.join(ROLES)}")
    by_id = {id(p): n for n, p in model.named_parameters()}
    stages = model.stage_modules()
    names = [{local: by_id[id(p)] for local, p in st.named_parameters()} for st in stages]
    owned = [n for m in names for n in m.values()]
    if sorted(owned) != sorted(by_id.values()):
        raise AssertionError("stages must own every parameter exactly once")
    return ModelLayout(roles={n: roles[n] for n in trainable},
                       stages=StageMap(stages, names, model.stage_flops(seq_len)))


def build_backend(cls, model: nn.Module, hp, total_steps: int, seq_len: int):
    """A backend of class ``cls`` for ``model``, built as the host builds it: with the model's layout. A
    module-level function, so that a ``functools.partial`` of it crosses to spawned processes."""
    return cls(model, hp, total_steps, model_layout(model, seq_len))
