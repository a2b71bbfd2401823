"""Atomic writes (benchmark/files.py): a writer killed at any point leaves the old file whole."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmark.files import atomic_write, atomic_write_json

_KILLED_WRITER = """
import os, sys, time
from benchmark.files import atomic_write

def write(f):
    f.write(b"new content, complete")
    f.flush()
    open(sys.argv[2], "w").close()  # tell the test: written, not yet renamed
    time.sleep(60)

atomic_write(sys.argv[1], write)
"""


@pytest.mark.slow
def test_a_writer_killed_between_write_and_rename_leaves_the_old_file(tmp_path):
    target, ready = tmp_path / "record.json", tmp_path / "ready"
    atomic_write(target, "old record")
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, str(target), str(ready)],
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    deadline = time.time() + 60
    while not ready.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    assert ready.exists(), "the writer never got to its write"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert target.read_text() == "old record"
    leftovers = [p.name for p in tmp_path.iterdir() if p.name not in ("record.json", "ready")]
    assert leftovers and all(name.startswith(".record.json.") for name in leftovers)  # hidden, never read
    atomic_write_json(target, {"b": 1, "a": 2})
    assert target.read_text() == '{\n "a": 2,\n "b": 1\n}\n'


def test_a_failing_writer_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "x.bin"

    def broken(f):
        f.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, broken)
    assert not target.exists() and not list(tmp_path.iterdir())
    atomic_write(tmp_path / "sub" / "y.bin", b"\x00\x01")
    assert (tmp_path / "sub" / "y.bin").read_bytes() == b"\x00\x01"
