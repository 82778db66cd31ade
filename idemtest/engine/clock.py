"""Simulated time: during a run Python's wall clock reads the run's logical time,
and `sql_now()` tells the instrumented connections which time SQL's clock
functions should read (see `idemtest.sandbox.sqlclock`)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

# Clocks that are running, innermost last. time-machine is process-wide, and the
# attempts it times run in worker threads (two of them at once for a concurrent
# step), so the record is process-wide too, not thread-local.
_active: list[Clock] = []
_active_lock = threading.Lock()
# what `sql_now()` returns: rebuilt under the lock, read without it (one reference
# read per statement on the instrumented paths)
_current: datetime | None = None


def _aware(t: datetime) -> datetime:
    # run times are naive UTC; time-machine would read a naive value as local time
    return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t


def _publish() -> None:
    global _current
    _current = _active[-1].at if _active else None


def sql_now() -> datetime | None:
    """The simulated time (aware, UTC) while a `frozen_at` clock runs, else None.

    It is what `datetime.now(timezone.utc)` returns at that moment; the SQL clock
    rewrite uses it so SQL `now()` agrees with Python's `datetime.now()`."""
    return _current


class Clock:
    """A stopped wall clock that the runner moves from run to run.

    `datetime.now()`, `time.time()` and `date.today()` read it (via time-machine);
    monotonic clocks keep running so timeouts still work."""

    def __init__(self) -> None:
        self._traveller: Any = None
        self._coords: Any = None
        self.at: datetime | None = None

    def move_to(self, t: datetime) -> None:
        import time_machine

        at = _aware(t).astimezone(timezone.utc)
        if self._coords is None:
            self._traveller = time_machine.travel(at, tick=False)
            self._coords = self._traveller.start()
        else:
            self._coords.move_to(at)
        with _active_lock:
            self.at = at
            if self not in _active:
                _active.append(self)
            _publish()

    def stop(self) -> None:
        if self._traveller is not None:
            self._traveller.stop()
        self._traveller = self._coords = None
        with _active_lock:
            self.at = None
            if self in _active:
                _active.remove(self)
            _publish()


@contextmanager
def frozen_at(t: datetime) -> Iterator[Clock]:
    clock = Clock()
    clock.move_to(t)
    try:
        yield clock
    finally:
        clock.stop()
