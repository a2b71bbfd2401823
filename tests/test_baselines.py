"""The README's table of defaults next to the release's is the code's: every row is checked."""

import re
from pathlib import Path

import pytest

from models.layout import model_layout
from optimizers import get_backend, make_hyper
from optimizers.partition import muon_split
from tests.helpers import backend_for, tiny_model

README = Path(__file__).resolve().parents[1] / "README.md"
ROW = re.compile(r"^\| `(?P<backend>[a-z-]+)` \| `(?P<field>\w+)` \| (?P<ours>[^|]+?) \|")


def _rows() -> list[tuple[str, str, str]]:
    text = README.read_text()
    table = text[text.index("### Defaults next to the release's"):]
    table = table[: table.index("\n\n", table.index("| backend |"))]
    return [(m["backend"], m["field"], m["ours"]) for m in map(ROW.match, table.splitlines()) if m]


def test_the_table_covers_every_first_order_baseline_and_gauss_newton():
    rows = _rows()
    assert {b for b, _, _ in rows} == {"adamw", "muon", "soap", "gn", "layerwise-gn"}
    assert len(rows) >= 35


@pytest.mark.parametrize("backend, field, ours", _rows())
def test_each_default_is_the_tables(backend, field, ours):
    value = getattr(make_hyper(get_backend(backend)), field)
    if isinstance(value, bool):
        assert str(value) == ours
    elif isinstance(value, (int, float)):
        assert value == float(ours), (backend, field, value, ours)
    else:
        assert value == ours


def test_first_order_baselines_clip_per_chain_as_the_release():
    model = tiny_model()
    params = dict(model.named_parameters())
    names = {id(p): n for n, p in params.items()}
    split = muon_split(model_layout(model, model.cfg.max_seq_len))

    def groups(name):
        backend = backend_for(get_backend(name), model, {}, 10)
        return [[names[id(p)] for p in group] for group in backend.clip_groups()]

    assert groups("adamw") == [list(params)]
    assert groups("muon") == [split.embed_head, split.hidden + split.vectors]
    assert groups("soap") == [[n for n, p in params.items() if p.ndim == 2], [n for n, p in params.items() if p.ndim != 2]]
