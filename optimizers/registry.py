"""Backends register by name; an unknown name fails with the list of known ones. Each backend's
hyperparameters are a dataclass of defaults, overridden by checked name and type."""

from __future__ import annotations

import dataclasses
from importlib.metadata import entry_points
from typing import Any

from optimizers.hyper import problem
from optimizers.interface import Backend

_REGISTRY: dict[str, type[Backend]] = {}
_PLUGINS_PENDING = True  # plugins load on the first lookup, not at import: a plugin imports optimizers too


def _load_plugins_once() -> None:
    global _PLUGINS_PENDING
    if _PLUGINS_PENDING:
        _PLUGINS_PENDING = False
        load_plugins()


def check_declaration(cls) -> None:
    """What every backend declares, or a TypeError saying what is missing or wrong."""
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise TypeError(f"{cls!r} is not a subclass of optimizers.Backend")
    missing = [a for a in ("name", "Hyper", "search_space") if not hasattr(cls, a)]
    if missing:
        raise TypeError(f"{cls.__name__} does not set {', '.join(missing)}")
    if not isinstance(cls.name, str) or not cls.name or "," in cls.name or "." in cls.name:
        raise TypeError(f"{cls.__name__}.name must be a non-empty string without ',' or '.', got {cls.name!r}")
    if not dataclasses.is_dataclass(cls.Hyper):
        raise TypeError(f"{cls.__name__}.Hyper must be a dataclass")
    unknown = set(cls.search_space) - {f.name for f in dataclasses.fields(cls.Hyper)}
    if unknown:
        raise TypeError(f"{cls.__name__}.search_space names unknown fields {sorted(unknown)}")
    for key, values in cls.search_space.items():
        for value in values:
            why = problem(cls.Hyper, key, value)
            if why:
                raise TypeError(f"{cls.__name__}.search_space: {why}")
    if cls.__abstractmethods__:
        raise TypeError(f"{cls.__name__} does not implement {', '.join(sorted(cls.__abstractmethods__))}")


def register(cls: type[Backend]) -> type[Backend]:
    check_declaration(cls)
    if cls.name in _REGISTRY:
        raise ValueError(f"backend {cls.name!r} registered twice")
    _REGISTRY[cls.name] = cls
    return cls


def unregister(name: str) -> None:
    """Remove a backend (tests register throwaway ones)."""
    _REGISTRY.pop(name, None)


def registry() -> dict[str, type[Backend]]:
    _load_plugins_once()
    return dict(_REGISTRY)


class UnknownBackend(KeyError):
    def __str__(self) -> str:
        return self.args[0]


def get_backend(name: str) -> type[Backend]:
    _load_plugins_once()
    if name not in _REGISTRY:
        raise UnknownBackend(f"unknown optimizer {name!r}; valid: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def _checked(cls: type[Backend], key: str, default: Any, value: Any) -> Any:
    """``value`` for the field ``key`` whose default is ``default``, converted, or a ValueError."""
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ValueError(f"{cls.name}.{key} must be true or false, got {value!r}")
    elif isinstance(default, (int, float)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{cls.name}.{key} must be a number, got {value!r}")
        if isinstance(default, int) and not float(value).is_integer():
            raise ValueError(f"{cls.name}.{key} must be an integer, got {value!r}")
        value = type(default)(value)
    elif isinstance(default, str) and not isinstance(value, str):
        raise ValueError(f"{cls.name}.{key} must be a string, got {value!r}")
    return value


def make_hyper(cls: type[Backend], overrides: dict[str, Any] | None = None):
    """Build a backend's hyperparameters, checking every override's name, type and declared valid values
    (``optimizers.hyper``); a ValueError names the backend and the first problem."""
    fields = {f.name for f in dataclasses.fields(cls.Hyper)}
    hp = cls.Hyper()
    clean = {}
    for key, value in (overrides or {}).items():
        if key not in fields:
            raise ValueError(f"{cls.name} has no hyperparameter {key!r}; valid: {', '.join(fields)}")
        clean[key] = _checked(cls, key, getattr(hp, key), value)
        why = problem(cls.Hyper, key, clean[key])
        if why:
            raise ValueError(f"{cls.name}.{why}")
    return dataclasses.replace(hp, **clean)


# ---------------------------------------------------------------------------------------------- plugins
# Backends from other installed packages: each entry point of the group ``optbench.backends`` names a
# ``Backend`` subclass (``name = "package.module:Class"``), registered after the built-in ones. A plugin
# that fails to import or to declare itself is set aside with the reason (``bench list`` says it in one
# line) and never breaks the built-ins or the other plugins.

GROUP = "optbench.backends"
BROKEN: dict[str, str] = {}  # entry point name -> why it was not registered
SOURCES: dict[str, str] = {}  # backend name -> the distribution that provides it


def load_plugins() -> None:
    for ep in entry_points(group=GROUP):
        try:
            cls = ep.load()
            check_declaration(cls)
            known = _REGISTRY.get(cls.name)
            if known is None:
                register(cls)
            elif known is not cls:
                raise ValueError(f"its name {cls.name!r} is taken by {known.__module__}.{known.__qualname__}")
        except Exception as exc:  # a plugin's own bug, whatever it is, must not take the harness down
            BROKEN[ep.name] = f"{ep.value}: {type(exc).__name__}: {' '.join(str(exc).split())}"
            continue
        SOURCES[cls.name] = ep.dist.name if ep.dist is not None else ep.value
