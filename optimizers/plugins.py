"""Backends from other installed packages: each entry point of the group ``optbench.backends`` names a
``Backend`` subclass (``name = "package.module:Class"``), registered after the built-in ones. A plugin
that fails to import or to declare itself is set aside with the reason (``bench list`` says it in one
line) and never breaks the built-ins or the other plugins."""

from __future__ import annotations

from importlib.metadata import entry_points

from optimizers.registry import check_declaration, register, registry

GROUP = "optbench.backends"
BROKEN: dict[str, str] = {}  # entry point name -> why it was not registered
SOURCES: dict[str, str] = {}  # backend name -> the distribution that provides it


def load_plugins() -> None:
    for ep in entry_points(group=GROUP):
        try:
            cls = ep.load()
            check_declaration(cls)
            known = registry().get(cls.name)
            if known is None:
                register(cls)
            elif known is not cls:
                raise ValueError(f"its name {cls.name!r} is taken by {known.__module__}.{known.__qualname__}")
        except Exception as exc:  # a plugin's own bug, whatever it is, must not take the harness down
            BROKEN[ep.name] = f"{ep.value}: {type(exc).__name__}: {' '.join(str(exc).split())}"
            continue
        SOURCES[cls.name] = ep.dist.name if ep.dist is not None else ep.value
