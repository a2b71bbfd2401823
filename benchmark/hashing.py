"""The one content-hash helper: run ids, workload keys, corpus fingerprints, cache keys and shards are all
prefixes of a SHA-256 over the same canonical encoding (strings and bytes as they are, anything else as
sorted-key JSON)."""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path


def content_hash(*parts, length: int | None = 16, algorithm: str = "sha256") -> str:
    """Hex digest of ``parts`` in order, cut to ``length`` characters (None: the whole digest)."""
    h = hashlib.new(algorithm)
    for part in parts:
        if isinstance(part, bytes):
            h.update(part)
        else:
            h.update((part if isinstance(part, str) else json.dumps(part, sort_keys=True)).encode())
    return h.hexdigest()[:length]


def file_hash(*paths: str | Path, length: int | None = None) -> str:
    """SHA-256 over the contents of ``paths`` in order (one file's digest is remembered while its size and
    modification time stay the same)."""
    if len(paths) == 1:
        stat = Path(paths[0]).stat()
        return _one_file(str(paths[0]), stat.st_size, stat.st_mtime_ns)[:length]
    h = hashlib.sha256()
    for path in paths:
        _stream(path, h)
    return h.hexdigest()[:length]


@lru_cache(maxsize=64)
def _one_file(path: str, size: int, mtime_ns: int) -> str:
    return _stream(path, hashlib.sha256()).hexdigest()


def _stream(path, h):
    with open(path, "rb") as f:
        while chunk := f.read(1 << 24):
            h.update(chunk)
    return h
