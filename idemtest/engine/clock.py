"""Simulated time: during a run Python's wall clock starts at the run's logical
time and ticks forward with real elapsed time (time-machine's `tick`), and
`sql_now()` tells the instrumented connections which time SQL's clock functions
should read (see `idemtest.sandbox.sqlclock`).

Why it ticks: loaders build ids from the clock (dlt's load id is
`str(time.time())`); a stopped clock gives two loads of one run the same id. A
run's start is still fixed by the scenario, so replays start where the saved
scenario says; only the microseconds a run spends move the clock, which
reaches a visible field only when the load stores sub-second clock readings
(declare such columns `Target(ignore=...)`)."""

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
_current: datetime | None = None  # the innermost clock's start
_current_clock: Clock | None = None


def _aware(t: datetime) -> datetime:
    # run times are naive UTC; time-machine would read a naive value as local time
    return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t


def _publish() -> None:
    global _current, _current_clock
    _current_clock = _active[-1] if _active else None
    _current = _current_clock.at if _current_clock else None


def sql_now() -> datetime | None:
    """The simulated time (aware, UTC) while a `frozen_at` clock runs, else None.

    It is what `datetime.now(timezone.utc)` returns at that moment (the ticking
    clock: the run's start plus the real time elapsed since); the SQL clock rewrite
    uses it so SQL `now()` agrees with Python's `datetime.now()`."""
    clock = _current_clock
    if clock is None:
        return None
    return clock.now()


class Clock:
    """A wall clock that the runner sets to each run's start; it then ticks with real time.

    `datetime.now()`, `time.time()` and `date.today()` read it (via time-machine);
    monotonic clocks keep running so timeouts still work."""

    def __init__(self, tick: bool = True) -> None:
        self._traveller: Any = None
        self._coords: Any = None
        self.tick = tick
        self.at: datetime | None = None  # where the clock was last set

    def now(self) -> datetime | None:
        at = self.at
        if at is None or not self.tick:
            return at
        # time-machine's own ticking reading (its traveller of this clock is the innermost
        # one while this clock is): exactly what the load's `datetime.now()` reads
        return datetime.now(timezone.utc)

    def move_to(self, t: datetime) -> None:
        import time_machine

        at = _aware(t).astimezone(timezone.utc)
        if self._coords is None:
            self._traveller = time_machine.travel(at, tick=self.tick)
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
def frozen_at(t: datetime, tick: bool = True) -> Iterator[Clock]:
    """The wall clock set to `t` for the block (ticking from there unless tick=False)."""
    clock = Clock(tick)
    clock.move_to(t)
    try:
        yield clock
    finally:
        clock.stop()
