"""docs/backends.md is the code's: every row of its table of defaults next to the release's, the built-in
backends with their search spaces, the Gauss-Newton settings it names and the numbers it states."""

import dataclasses
import importlib
import re
from pathlib import Path

import pytest

from models.layout import model_layout
from optimizers import get_backend, make_hyper, registry
from optimizers.partition import muon_split
from tests.helpers import backend_for, tiny_model

PAGE = Path(__file__).resolve().parents[1] / "docs" / "backends.md"
LOGIT_SPACE = "optimizers.gauss_newton.logit_space"  # where CHUNK_ELEMENTS lives (update when it moves)
ROW = re.compile(r"^\| `(?P<backend>[a-z-]+)` \| `(?P<field>\w+)` \| (?P<ours>[^|]+?) \|")


def _rows() -> list[tuple[str, str, str]]:
    text = PAGE.read_text()
    table = text[text.index("## Defaults next to the release's"):]
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


def _section(heading: str) -> str:
    text = PAGE.read_text()
    body = text[text.index(heading) + len(heading):]
    return body[: body.index("\n## ")] if "\n## " in body else body


def test_the_backends_table_is_the_registry_with_its_search_spaces():
    part = _section("## The built-in backends")
    rows = [[c.strip() for c in row.strip("|").split("|")] for row in part.strip().splitlines()[2:] if row.startswith("| `")]
    assert [r[0].strip("`") for r in rows] == [n for n, c in registry().items() if c.__module__.startswith("optimizers.")]
    for name, _, space in rows:
        stated = {key: [float(v) for v in values.split(", ")]
                  for key, values in (part.strip().split(" ", 1) for part in space.split(";"))}
        assert stated == get_backend(name.strip("`")).search_space, name


def test_the_gauss_newton_settings_named_are_declared_and_off_by_default():
    hyper = get_backend("gn").Hyper
    hp, fields = hyper(), {f.name: f for f in dataclasses.fields(hyper)}
    choices = {c for f in fields.values() if isinstance(f.metadata.get("valid"), tuple) for c in f.metadata["valid"]}
    part = _section("## Gauss-Newton settings beyond the release").split("**A cheaper line search")[0]
    for name, _ in re.findall(r"`(\w+)(?:=(\w+))?`", part):
        assert name in fields or name in choices, f"backends.md: {name} is no GN setting or choice"
    for name in re.findall(r"`(\w+)`", part[: part.index("; inner schedules")]):
        assert not getattr(hp, name), f"backends.md: {name} is on by default"
    assert set(re.findall(r"`(\w+)` \(default", part)) == {hp.inner_schedule, hp.product}


@pytest.mark.parametrize("pattern, value", [
    (r"chunks of at most (\d+)M logits", lambda: importlib.import_module(LOGIT_SPACE).CHUNK_ELEMENTS / 2**20),
    (r"refreshed every (\d+) steps by power iteration", lambda: make_hyper(get_backend("soap")).precondition_frequency),
    (r"dimensions above (\d+) unrotated", lambda: make_hyper(get_backend("soap")).max_precond_dim),
    (r"momentum (\d\.\d+), Nesterov, (\d+) Newton-Schulz steps", lambda: (make_hyper(get_backend("muon")).momentum,
                                                                        make_hyper(get_backend("muon")).ns_steps)),
])
def test_each_number_the_page_states_is_the_codes(pattern, value):
    found = re.findall(pattern, " ".join(PAGE.read_text().split()))
    expected = value() if isinstance(value(), tuple) else (value(),)
    assert found, f"backends.md no longer states {pattern!r}"
    for groups in found:
        groups = groups if isinstance(groups, tuple) else (groups,)
        assert tuple(map(float, groups)) == tuple(map(float, expected)), (pattern, groups, expected)
