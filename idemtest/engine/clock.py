"""Simulated time: during a run Python's wall clock reads the run's logical time."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any


def _aware(t: datetime) -> datetime:
    # run times are naive UTC; time-machine would read a naive value as local time
    return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t


class Clock:
    """A stopped wall clock that the runner moves from run to run.

    `datetime.now()`, `time.time()` and `date.today()` read it (via time-machine);
    monotonic clocks keep running so timeouts still work."""

    def __init__(self) -> None:
        self._traveller: Any = None
        self._coords: Any = None

    def move_to(self, t: datetime) -> None:
        import time_machine

        if self._coords is None:
            self._traveller = time_machine.travel(_aware(t), tick=False)
            self._coords = self._traveller.start()
        else:
            self._coords.move_to(_aware(t))

    def stop(self) -> None:
        if self._traveller is not None:
            self._traveller.stop()
        self._traveller = self._coords = None


@contextmanager
def frozen_at(t: datetime) -> Iterator[Clock]:
    clock = Clock()
    clock.move_to(t)
    try:
        yield clock
    finally:
        clock.stop()
