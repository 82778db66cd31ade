"""Scratch folders (DuckDB sandbox files, landing folders) named after the
process that made them, so a run swept after a kill -9 finds and removes what
a dead process left in the temp folder, and never what a live one still uses."""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

_NAME = re.compile(r"^idemtest-(?P<kind>[a-z]+)-(?P<pid>\d+)-")


def make(kind: str) -> Path:
    """A new folder `idemtest-<kind>-<pid>-<random>` in the temp folder."""
    return Path(tempfile.mkdtemp(prefix=f"idemtest-{kind}-{os.getpid()}-"))


def pid_alive(pid: int) -> bool:
    """Whether a process of this host still runs (ours always does)."""
    if pid == os.getpid():
        return True
    if sys.platform == "win32":  # os.kill(pid, 0) would terminate the process there
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def sweep(kind: str, root: str | None = None) -> list[Path]:
    """Remove `idemtest-<kind>-<pid>-*` folders whose process is gone; returns them."""
    removed: list[Path] = []
    base = Path(root or tempfile.gettempdir())
    try:
        entries = list(base.iterdir())
    except OSError:
        return removed
    for entry in entries:
        m = _NAME.match(entry.name)
        if m is None or m.group("kind") != kind or not entry.is_dir() or pid_alive(int(m.group("pid"))):
            continue
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry)
    return removed
