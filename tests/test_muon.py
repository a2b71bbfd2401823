import torch

from optimizers import get_backend, make_hyper
from optimizers.partition import hidden_matrix_names
from tests.helpers import context, real_batches, tiny_model


def test_muon_update_is_orthogonal_on_hidden_matrices_and_adamw_moves_the_rest(smoke_data):
    _, data = smoke_data
    model = tiny_model()
    cls = get_backend("muon")
    hp = make_hyper(cls, {"momentum": 0.0, "nesterov": False, "grad_clip": 0.0, "warmup": 0.0,
                          "schedule": "constant", "lr": 0.1})
    backend = cls(model, hp, 10)
    hidden = hidden_matrix_names(model)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    backend.step(context(model, real_batches(data, 1, 4, 16, 128), None))
    muon, adamw = backend.optimizers
    assert {id(p) for g in muon.param_groups for p in g["params"]} == {
        id(p) for n, p in model.named_parameters() if n in hidden}
    for name, p in model.named_parameters():
        update = (before[name] - p.detach()).double()
        assert update.abs().max() > 0, f"{name} did not move"
        if name in hidden:
            # torch's Muon scales the orthogonalised update by lr * sqrt(max(1, rows/cols))
            scale = 0.1 * max(1, update.shape[0] / update.shape[1]) ** 0.5
            sv = torch.linalg.svdvals(update / scale)
            # Newton-Schulz (5 quintic steps) lands singular values in roughly [0.7, 1.2]
            assert sv.max() < 1.3 and sv.min() > 0.5, (name, sv)
