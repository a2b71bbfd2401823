"""The Muon backend (optimizers/first_order/muon.py): the release's three-way chain, one learning rate, clipping per
chain."""

import torch

from optimizers import get_backend, make_hyper
from optimizers.first_order.adam_nesterov import AdamNesterov
from optimizers.partition import muon_split
from tests.helpers import backend_for, context, real_batches, tiny_model


def test_muon_update_is_orthogonal_on_hidden_matrices_and_the_adam_parts_move_the_rest(token_data):
    _, data = token_data
    model = tiny_model()
    cls = get_backend("muon")
    hp = make_hyper(cls, {"momentum": 0.0, "nesterov": False, "grad_clip": 0.0, "lr": 0.1})
    backend = backend_for(cls, model, hp, 10)
    split = muon_split(backend.layout)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    backend.step(context(model, real_batches(data, 1, 4, 16, 128), None))
    muon, adamw, nesterov = backend.optimizers
    assert isinstance(muon, torch.optim.Muon) and isinstance(adamw, torch.optim.AdamW)
    assert isinstance(nesterov, AdamNesterov)
    params = dict(model.named_parameters())
    for opt, names in zip(backend.optimizers, split):
        assert [p for g in opt.param_groups for p in g["params"]] == [params[n] for n in names]
        assert all(g["lr"] == 0.1 for g in opt.param_groups)  # one learning rate for the chain
    assert adamw.param_groups[0]["weight_decay"] == nesterov.param_groups[0]["weight_decay"] == 1e-4
    for name, p in model.named_parameters():
        update = (before[name] - p.detach()).double()
        assert update.abs().max() > 0, f"{name} did not move"
        if name in split.hidden:
            # torch's Muon scales the orthogonalised update by lr * sqrt(max(1, rows/cols))
            scale = 0.1 * max(1, update.shape[0] / update.shape[1]) ** 0.5
            sv = torch.linalg.svdvals(update / scale)
            grad_sv = torch.linalg.svdvals(p.grad.double())  # no momentum, no clipping: the update's own gradient
            # Newton-Schulz (5 quintic steps) lands the bulk of the singular values in roughly [0.7, 1.2]; it lifts
            # the directions of an ill-conditioned gradient less far the smaller they are (QK-LayerNorm leaves one
            # direction of wq and wk with no gradient at all), so every direction of at least a tenth of the
            # gradient's largest is held to it, whatever the text
            bulk = sv[grad_sv >= 0.1 * grad_sv[0]]
            assert sv.max() < 1.3 and bulk.min() > 0.3 and 0.7 < sv.median() < 1.2, (name, sv, grad_sv)


def test_gradients_are_clipped_per_chain(token_data):
    _, data = token_data
    model = tiny_model()
    cls = get_backend("muon")
    backend = backend_for(cls, model, make_hyper(cls, {"grad_clip": 1e-3}), 10)
    seen = {}
    for opt in backend.optimizers:  # record the clipped gradients each optimizer is handed
        opt.register_step_pre_hook(lambda o, *_: seen.update({id(p): p.grad.clone() for g in o.param_groups
                                                              for p in g["params"]}))
    backend.step(context(model, real_batches(data, 1, 4, 16, 128), None))
    split = muon_split(backend.layout)
    params = dict(model.named_parameters())

    def norm(names):
        return torch.sqrt(sum(seen[id(params[n])].double().square().sum() for n in names)).item()

    assert abs(norm(split.embed_head) - 1e-3) < 1e-8
    assert abs(norm(split.hidden + split.vectors) - 1e-3) < 1e-8
