"""Which `idemtest_*` databases are ours, and which are leftovers of dead sessions.

Every database idemtest creates is named
`idemtest_<host>_<pid>_<worker>_<unix time hex>_<token><kind><n>`; everything
before `<kind>` is its owner (one backend of one process). While a backend
lives it holds a lease: its admin connection's `application_name` is
`idemtest lease <owner>`. A sweep drops only what is provably dead: no lease on
the server, and, on this host, the owner's pid gone; on another host, no lease
and older than a short grace (a lease is taken before the first database).
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import time
from collections.abc import Collection

from ..scratch import pid_alive as _pid_alive

PREFIX = "idemtest_"
# idemtest_<host hash>_<pid>_<worker>_<unix time hex>_<suffix>; the sweep parses it
_NAME_RE = re.compile(r"^idemtest_([0-9a-f]{4})_(\d+)_([a-z0-9]+)_([0-9a-f]{8})_([a-z0-9]+)$")
LEASE = "idemtest lease "
#: a database of another host's owner without a lease is dead after this (clock skew, start-up)
GRACE_S = 120.0


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


def owner_of(name: str) -> str | None:
    """The owner prefix of an idemtest database name (what its lease names), or None."""
    m = _NAME_RE.match(name)
    if m is None:
        return None
    host, pid, worker, stamp, suffix = m.groups()
    return f"{PREFIX}{host}_{pid}_{worker}_{stamp}_{suffix[:4]}"


def lease(owner: str) -> str:
    """The application_name a live backend's admin connection carries."""
    return f"{LEASE}{owner}"[:63]  # PostgreSQL truncates application_name at 63 bytes


def is_stale(name: str, leases: Collection[str] = (), now: float | None = None) -> bool:
    """An idemtest database whose owner is provably dead: no lease among
    `leases` (the application_names connected to the server) and, on this host,
    its process gone; on another host, older than GRACE_S."""
    m = _NAME_RE.match(name)
    if m is None:
        return False
    owner = owner_of(name)
    if owner is not None and lease(owner) in leases:
        return False  # a live session holds it, whatever its host or age
    host, pid, _worker, stamp, _suffix = m.groups()
    created = int(stamp, 16)
    if host == _host_tag():
        if int(pid) == os.getpid():
            # ours, or an earlier process that had our pid (containers reuse pids)
            return created < _STARTED
        return not _pid_alive(int(pid))
    # another host's process cannot be probed: without a lease it is gone
    return (time.time() if now is None else now) - created > GRACE_S
