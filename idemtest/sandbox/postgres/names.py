"""Which `idemtest_*` databases are ours, and which are leftovers of dead sessions.

Every database idemtest creates is named
`idemtest_<host>_<pid>_<worker>_<unix time hex>_<suffix>`: the sweep parses
the name to decide whether its creator is gone (same host, dead pid) or it is
simply old (another host: over STALE_AFTER_S seconds).
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import sys
import time

PREFIX = "idemtest_"
# idemtest_<host hash>_<pid>_<worker>_<unix time hex>_<suffix>; the sweep parses it
_NAME_RE = re.compile(r"^idemtest_([0-9a-f]{4})_(\d+)_([a-z0-9]+)_([0-9a-f]{8})_([a-z0-9]+)$")
STALE_AFTER_S = 3600.0


def _host_tag() -> str:
    return hashlib.sha1(socket.gethostname().encode()).hexdigest()[:4]


def _worker_tag() -> str:
    w = re.sub(r"[^a-z0-9]", "", os.environ.get("PYTEST_XDIST_WORKER", "").lower())
    return (w or "m")[:8]


_STARTED = int(time.time())  # databases of an earlier process with our pid are older than this


def name_prefix() -> str:
    """The prefix of every database this process creates (a timestamp and a suffix follow:
    `idemtest_<host>_<pid>_<worker>_<unix time hex>_<backend token><kind><n>`)."""
    return f"{PREFIX}{_host_tag()}_{os.getpid()}_{_worker_tag()}_"


def _pid_alive(pid: int) -> bool:
    if sys.platform == "win32":  # os.kill(pid, 0) would terminate the process there
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def is_stale(name: str, now: float | None = None) -> bool:
    """An idemtest database left by a dead process of this host, or older than an hour."""
    m = _NAME_RE.match(name)
    if m is None:
        return False
    host, pid, _worker, stamp, _suffix = m.groups()
    created = int(stamp, 16)
    if host == _host_tag():
        if int(pid) == os.getpid():
            # ours, or an earlier process that had our pid (containers reuse pids)
            return created < _STARTED
        return not _pid_alive(int(pid))
    # another host's process cannot be probed: go by age
    return (time.time() if now is None else now) - created > STALE_AFTER_S
