"""Deterministic interleaving of concurrent runs, one statement per turn.

Each run executes in its own thread with its own connection. At every
statement boundary the run parks; the scheduler picks which parked run goes
next from the drawn `choices` (so an interleaving shrinks, is saved and
replays). A run that does not park again within `block_after` seconds is
blocked inside the database (a row lock): it is recorded as blocked and
another run proceeds, so a lock wait never hangs the scheduler.
"""

from __future__ import annotations

import itertools
import threading
import time
from typing import TYPE_CHECKING, Any

from .model import Boundary

if TYPE_CHECKING:
    from ..instrument import Controller

BLOCK_AFTER = 0.25  # seconds a granted statement may run before it counts as blocked
#: seconds a run may spend in Python between statements (its own code, or an orchestrator's
#: machinery: a Dagster materialize spends ~0.1 s before its first statement) before the
#: others go on without it; only a run inside a statement can be waiting on a database lock
PYTHON_AFTER = 5.0


class Interleaver:
    def __init__(self, choices: tuple[int, ...], block_after: float = BLOCK_AFTER) -> None:
        self.cv = threading.Condition()
        self.choices = list(choices)
        self.pos = 0
        self.turn: Controller | None = None
        # the boundaries each run's threads are parked at: a run whose load writes from a
        # pool parks several threads at once, and a turn lets one of them go
        self.parked: dict[Controller, list[Boundary]] = {}
        self.finished: set[Controller] = set()
        self.block_after = block_after
        self.seq = itertools.count(1)
        self.blocked: list[tuple[str, Boundary]] = []
        self.hooks: list[Any] = []
        # runs whose granted statement has not returned yet (set at the grant, cleared by
        # the controller's after-hook): the others are in Python between statements
        self.in_statement: set[Controller] = set()
        self._hooked: set[Controller] = set()

    def gate(self, ctl: Controller, b: Boundary) -> None:
        """Worker side: park at a boundary until granted the turn."""
        with self.cv:
            if ctl not in self._hooked:
                self._hooked.add(ctl)
                ctl.after_hooks.append(self._statement_done)
            self.in_statement.discard(ctl)
            self.parked.setdefault(ctl, []).append(b)
            self.cv.notify_all()
            while self.turn is not ctl:
                if ctl.aborted:
                    self._unpark(ctl, b)
                    return
                self.cv.wait(0.05)
            self.turn = None  # acknowledge: the scheduler may look again
            self.in_statement.add(ctl)
            self._unpark(ctl, b)
            b.seq = next(self.seq)
            self.cv.notify_all()
        for hook in self.hooks:
            hook(ctl, b)

    def _unpark(self, ctl: Controller, b: Boundary) -> None:
        waiting = self.parked.get(ctl)
        if waiting is not None:
            waiting[:] = [x for x in waiting if x is not b]
        if not waiting:
            self.parked.pop(ctl, None)

    def _statement_done(self, ctl: Controller, b: Boundary) -> None:
        with self.cv:
            self.in_statement.discard(ctl)
            self.cv.notify_all()

    def done(self, ctl: Controller) -> None:
        with self.cv:
            self.finished.add(ctl)
            self.cv.notify_all()

    def drive(self, ctls: list[Controller], deadline: float) -> bool:
        """Scheduler side: grant turns until every run finished. False on timeout.

        A run that is neither parked nor finished is executing a statement; once
        it has done so for `block_after` seconds it is waiting on a lock held by
        another run, so a parked run gets the turn instead of waiting forever. A run
        between statements (in Python) is waited for up to PYTHON_AFTER seconds."""
        since: dict[Controller, float] = {c: time.monotonic() for c in ctls}
        noted: set[tuple[Controller, int]] = set()
        with self.cv:
            while True:
                active = [c for c in ctls if c not in self.finished]
                if not active:
                    return True
                now = time.monotonic()
                if now > deadline:
                    return False
                parked = [c for c in active if c in self.parked]
                running = [c for c in active if c not in self.parked]
                busy = [c for c in running if now - since[c] <= (self.block_after if c in self.in_statement else PYTHON_AFTER)]
                if busy or not parked:
                    self.cv.wait(0.01)
                    continue
                for c in running:  # every running one is blocked in the database (or stuck in Python)
                    mark = (c, c.count)
                    if mark not in noted:
                        noted.add(mark)
                        self.blocked.append((c.label, c.trace[-1] if c.trace else Boundary(0, "?")))
                pick = self.choices[self.pos] if self.pos < len(self.choices) else 0
                self.pos += 1
                granted = parked[pick % len(parked)]
                self.turn = granted
                since[granted] = time.monotonic()
                self.cv.notify_all()
                while self.turn is granted and granted not in self.finished and time.monotonic() < deadline:
                    self.cv.wait(0.01)
