"""Settings from the command line: ``--set gn.ls_rule=first_worse,muon.momentum=0.9`` fixes hyperparameters
of an optimizer for every trial of it, ``--grid "muon.lr=0.05,0.1,0.2"`` replaces the values its tuning
searches for that key. Every key and value is checked against the backend's hyperparameter dataclass
(its field names and the types of its defaults), and the backend is built once with them, so a bad
setting fails before anything runs, in one line.

A fixed setting makes a variant of the optimizer: its trials get their own run ids, and the report shows
them as a row of their own, labelled ``name[key=value]``. A grid given here is searched whole (the
tuning budget cuts only the backends' declared grids)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from benchmark import BenchError
from optimizers import get_backend
from optimizers.hyper import problem
from optimizers.registry import UnknownBackend, make_hyper

_TRUE, _FALSE = ("true", "yes", "1", "on"), ("false", "no", "0", "off")


@dataclass(frozen=True)
class Settings:
    """What the command line says of one optimizer: fixed values, and searched values per key."""

    fixed: dict[str, Any] = field(default_factory=dict)
    grid: dict[str, list[Any]] = field(default_factory=dict)

    def space(self, declared: dict[str, list]) -> dict[str, list]:
        """The search space tuned: the declared one, with the given grids replacing its keys' values and
        without the fixed keys."""
        return {k: v for k, v in {**declared, **self.grid}.items() if k not in self.fixed}


def _typed(name: str, key: str, text: str) -> Any:
    """``text`` as the type of ``name``'s default for ``key``, or a one-line error naming the valid keys."""
    cls = get_backend(name)
    fields = {f.name: f for f in dataclasses.fields(cls.Hyper)}
    if key not in fields:
        raise BenchError(f"{name} has no hyperparameter {key!r}; valid: {', '.join(fields)}")
    default = getattr(cls.Hyper(), key)
    try:
        if isinstance(default, bool):
            if text.lower() not in _TRUE + _FALSE:
                raise ValueError
            return text.lower() in _TRUE
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            return float(text)
    except ValueError:
        kind = "true or false" if isinstance(default, bool) else type(default).__name__
        raise BenchError(f"{name}.{key} must be {'an ' if kind == 'int' else 'a ' if kind == 'float' else ''}"
                         f"{kind}, got {text!r}") from None
    return text


def _valid(name: str, key: str, text: str) -> Any:
    """``text`` typed for ``name``'s ``key`` and within what the backend declares valid for it."""
    value = _typed(name, key, text)
    why = problem(get_backend(name).Hyper, key, value)
    if why:
        raise BenchError(f"{name}.{why}")
    return value


def _key(item: str, option: str) -> tuple[str, str, str]:
    """``opt.key=value`` split into its parts, or a one-line error."""
    target, sep, value = item.partition("=")
    name, dot, key = target.strip().partition(".")
    if not (sep and dot and name and key and value.strip()):
        raise BenchError(f"{option} expects optimizer.key=value, got {item!r}")
    try:
        get_backend(name)
    except UnknownBackend as exc:
        raise BenchError(f"{option} {item}: {exc}") from None
    return name, key.strip(), value.strip()


def parse_settings(sets: list[str], grids: list[str], optimizers: list[str]) -> dict[str, Settings]:
    """The settings of each optimizer named by ``--set`` items (comma-separated ``opt.key=value``) and
    ``--grid`` options (one ``opt.key=v1,v2,...`` each), checked; an optimizer not run is an error."""
    fixed: dict[str, dict] = {}
    grid: dict[str, dict] = {}
    for text in sets:
        for item in filter(None, (i.strip() for i in text.split(","))):
            name, key, value = _key(item, "--set")
            fixed.setdefault(name, {})[key] = _valid(name, key, value)
    for text in grids:
        name, key, values = _key(text, "--grid")
        parsed = [_valid(name, key, v.strip()) for v in values.split(",") if v.strip()]
        if len(set(map(repr, parsed))) != len(parsed):
            raise BenchError(f"--grid {text}: a value is given twice")
        grid.setdefault(name, {})[key] = parsed
    for name in {*fixed, *grid}:
        if name not in optimizers:
            raise BenchError(f"--set/--grid name {name}, which this run does not include "
                             f"(--optimizers {','.join(optimizers)})")
        both = set(fixed.get(name, {})) & set(grid.get(name, {}))
        if both:
            raise BenchError(f"{name}.{sorted(both)[0]} is both fixed by --set and searched by --grid")
    settings = {n: Settings(fixed.get(n, {}), grid.get(n, {})) for n in {*fixed, *grid}}
    for name, s in settings.items():
        _check_builds(name, s)
    return settings


def _check_builds(name: str, s: Settings) -> None:
    """Build the backend on a tiny model with the fixed values and each searched value, so that a value its
    constructor refuses (an unknown rule, a bad inner optimizer) fails here, in one line."""
    import torch

    from models.layout import build_backend
    from models.transformer import Transformer, model_config

    cls = get_backend(name)
    points = [dict(s.fixed)] + [{**s.fixed, key: v} for key, values in s.grid.items() for v in values]
    torch.manual_seed(0)
    model = Transformer(model_config("tiny"))
    for point in points:
        try:
            build_backend(cls, model, make_hyper(cls, point), 1, model.cfg.max_seq_len)
        except (ValueError, TypeError) as exc:
            raise BenchError(f"{name} with {point}: {exc}") from None
