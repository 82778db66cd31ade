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
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .clock import frozen_at
from .instrument import Boundary, Controller

if TYPE_CHECKING:
    from .runner import Attempt, Env, Snapshot, Stats
    from .scenario import ParallelStep

BLOCK_AFTER = 0.25  # seconds a granted statement may run before it counts as blocked


class Interleaver:
    def __init__(self, choices: tuple[int, ...], block_after: float = BLOCK_AFTER) -> None:
        self.cv = threading.Condition()
        self.choices = list(choices)
        self.pos = 0
        self.turn: Controller | None = None
        self.parked: dict[Controller, Boundary] = {}
        self.finished: set[Controller] = set()
        self.block_after = block_after
        self.seq = itertools.count(1)
        self.blocked: list[tuple[str, Boundary]] = []
        self.hooks: list[Any] = []

    def gate(self, ctl: Controller, b: Boundary) -> None:
        """Worker side: park at a boundary until granted the turn."""
        with self.cv:
            self.parked[ctl] = b
            self.cv.notify_all()
            while self.turn is not ctl:
                if ctl.aborted:
                    self.parked.pop(ctl, None)
                    return
                self.cv.wait(0.05)
            self.turn = None  # acknowledge: the scheduler may look again
            self.parked.pop(ctl, None)
            b.seq = next(self.seq)  # type: ignore[attr-defined]
            self.cv.notify_all()
        for hook in self.hooks:
            hook(ctl, b)

    def done(self, ctl: Controller) -> None:
        with self.cv:
            self.finished.add(ctl)
            self.cv.notify_all()

    def drive(self, ctls: list[Controller], deadline: float) -> bool:
        """Scheduler side: grant turns until every run finished. False on timeout.

        A run that is neither parked nor finished is executing a statement; once
        it has done so for `block_after` seconds it is waiting on a lock held by
        another run, so a parked run gets the turn instead of waiting forever."""
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
                busy = [c for c in running if now - since[c] <= self.block_after]
                if busy or not parked:
                    self.cv.wait(0.01)
                    continue
                for c in running:  # every running one is blocked in the database
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


def run_parallel(env: Env, step_no: int, step: ParallelStep, clock: datetime, attempts: list[Attempt], last: dict[str, Snapshot], stats: Stats | None) -> tuple[datetime, dict[str, Snapshot]]:
    """Run the step's runs at once, then retry the failed ones as the orchestrator would."""
    from .runner import check_after_attempt, check_visibility, run_with_retries

    now = max(clock, step.at)
    env.sync(now)
    inter = Interleaver(step.choices)
    sampler = env.sampler()
    if sampler is not None:
        inter.hooks.append(sampler.observe)
    started = []
    for run in step.runs:
        fault = run.faults[0] if run.faults else None
        rec, ctl, ctx = env.new_attempt(step_no, run, 1, now, fault, gate=inter.gate)
        rec.parallel = True
        started.append((run, rec, ctl, ctx))

    def body(rec: Attempt, ctl: Controller, ctx: Any) -> None:
        try:
            env.work(rec, ctl, ctx)
        finally:
            inter.done(ctl)

    with frozen_at(now):
        threads = [threading.Thread(target=body, args=(rec, ctl, ctx), daemon=True, name=f"idemtest {ctl.label}") for _, rec, ctl, ctx in started]
        for t in threads:
            t.start()
        ok = inter.drive([c for _, _, c, _ in started], time.monotonic() + env.timeout)
        if not ok:
            for _, rec, ctl, _ in started:
                if ctl not in inter.finished:
                    ctl.interrupt_all()
                    rec.outcome, rec.error = "hung", f"did not finish within timeout={env.timeout:g}s while running concurrently"
            for t in threads:
                t.join(2.0)
    for _, rec, ctl, _ in started:
        env.finish(rec, ctl)
        attempts.append(rec)
    if stats:
        stats.interleavings += 1
        stats.runs += len(started)
        stats.blocked += len(inter.blocked)
        stats.crashes += sum(rec.outcome == "crash" for _, rec, _, _ in started)
    for _, rec, _, _ in started:
        last = check_after_attempt(env, rec, last)
    if all(rec.outcome == "ok" for _, rec, _, _ in started):
        check_visibility(sampler, started[0][1])
    for label, b in inter.blocked:
        for _, rec, ctl, _ in started:
            if ctl.label == label:
                rec.blocked.append(b)
    clock = now
    for run, rec, _, _ in started:
        if rec.outcome != "ok":
            clock, last = run_with_retries(env, step_no, run, clock, attempts, last, stats, first_attempt=2)
    return clock, last
