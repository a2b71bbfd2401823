"""Files on disk: the one atomic write (temporary file, fsync, rename, directory fsync) and the cache
folder. A reader never sees half a file, and a writer killed mid-write leaves the old file intact."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def cache_root() -> Path:
    """Trained tokenizers, packed token arrays and warm starts: ``$OPTBENCH_CACHE`` or ~/.cache/optbench."""
    return Path(os.environ.get("OPTBENCH_CACHE", Path.home() / ".cache" / "optbench"))


def atomic_write(path: str | os.PathLike, content: bytes | str | Callable[[BinaryIO], None]) -> None:
    """Write ``content`` (bytes, text, or a function that writes into the open binary file) to ``path``
    atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            if callable(content):
                content(f)
            else:
                f.write(content.encode() if isinstance(content, str) else content)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)  # the rename itself survives a crash
    finally:
        os.close(fd)


def atomic_write_json(path: str | os.PathLike, obj) -> None:
    atomic_write(path, json.dumps(obj, indent=1, sort_keys=True, default=str) + "\n")
