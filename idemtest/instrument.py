"""Connection proxies: every statement boundary goes through a Controller.

The Controller counts boundaries (statements, commits, cursors, fault points),
records a trace, injects the planned crash, and — for concurrent runs — waits
for its turn from the scheduler. Backends wrap their driver's connections with
proxies that call `Controller.boundary` around each statement.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ._errors import InjectedCrash
from .engine.model import Boundary, Fault, abbreviate

__all__ = ["Boundary", "Controller", "Fault", "abbreviate", "activate", "current", "fault_point"]

_local = threading.local()


class Controller:
    """Per-run-attempt boundary counter and crash injector."""

    def __init__(self, label: str, fault: Fault | None = None, gate: Callable[[Controller, Boundary], None] | None = None) -> None:
        self.label = label
        self.fault = fault
        self.gate = gate  # the concurrent scheduler's turn-taking hook
        self.count = 0
        self.trace: list[Boundary] = []
        self.crashed: InjectedCrash | None = None
        self.aborted = False  # the harness gave up on this run (timeout, abandoned example)
        self.closers: list[Callable[[], None]] = []
        self.interrupters: list[Callable[[], None]] = []
        self.after_hooks: list[Callable[[Controller, Boundary], None]] = []
        self.user_ns: float = 0.0
        # (what the connection is, a probe describing the transaction it has open or None)
        self.txn_probes: list[tuple[str, Callable[[], str | None]]] = []
        #: DSNs / paths of non-sandbox databases the spec lets the load connect to (Spec.allow_foreign)
        self.allow_foreign: tuple[str, ...] = ()
        #: the first misuse the connect patches refused (a foreign database); it stands even
        #: when the load catches the error
        self.misuse: Exception | None = None

    # --- boundaries -------------------------------------------------------
    def boundary(self, kind: str, text: Any = "") -> Boundary:
        """Called before a statement executes; returns the boundary to pass to `done`."""
        self._check_alive()
        self.count += 1
        b = Boundary(self.count, kind, "" if text is None else str(text), self.label)
        if self.gate is not None:
            self.gate(self, b)
            self._check_alive()
        self.trace.append(b)
        if self.fault is not None and self.fault.at == b.index and self.fault.when == "before":
            self._crash(b, "before")
        return b

    def done(self, b: Boundary) -> None:
        """Called after the statement of `b` executed successfully."""
        for hook in self.after_hooks:
            hook(self, b)
        if self.fault is not None and self.fault.at == b.index and self.fault.when == "after":
            self._crash(b, "after")

    def fault_point(self, name: str) -> None:
        b = self.boundary("fault_point", name)
        self.done(b)

    @contextmanager
    def statement(self, kind: str, text: Any = "") -> Iterator[Boundary]:
        b = self.boundary(kind, text)
        yield b
        self.done(b)

    def _check_alive(self) -> None:
        if self.crashed is not None:
            # the process is dead: whatever user code tries next never happens
            raise InjectedCrash(self.crashed.boundary, self.crashed.when, "process already crashed")
        if self.aborted:
            raise InjectedCrash(None, "abort", "run aborted by idemtest")

    def _crash(self, b: Boundary, when: str) -> None:
        exc = InjectedCrash(b, when, f"idemtest injected a crash {when} boundary {b.index} ({b.describe()})")
        self.crashed = exc
        raise exc

    # --- connections -------------------------------------------------------
    def register(self, close: Callable[[], None], interrupt: Callable[[], None] | None = None) -> None:
        self.closers.append(close)
        if interrupt is not None:
            self.interrupters.append(interrupt)

    def watch(self, what: str, probe: Callable[[], str | None]) -> None:
        """`probe()` describes the transaction left open on connection `what`, or returns None."""
        self.txn_probes.append((what, probe))

    def open_transaction(self) -> str | None:
        """'<state> on <connection>' for the first connection of this run with a transaction
        open, or None; called when the load returned, before the connections are closed."""
        for what, probe in self.txn_probes:
            try:
                state = probe()
            except Exception:
                state = None  # a connection the load closed or broke has nothing open
            if state:
                return f"{state} on {what}"
        return None

    def close_all(self) -> None:
        """What the death of the process does: every connection drops, open transactions are lost."""
        for close in reversed(self.closers):
            try:
                close()
            except Exception:
                pass
        self.closers.clear()

    def interrupt_all(self) -> None:
        self.aborted = True
        for interrupt in self.interrupters:
            try:
                interrupt()
            except Exception:
                pass


def current() -> Controller | None:
    """The controller of the run executing on this thread, if any."""
    return getattr(_local, "controller", None)


@contextmanager
def activate(ctl: Controller) -> Iterator[Controller]:
    prev = getattr(_local, "controller", None)
    _local.controller = ctl
    try:
        yield ctl
    finally:
        _local.controller = prev


def fault_point(name: str) -> None:
    """Mark a point in user code where idemtest may crash the run.

    Outside an idemtest run this does nothing, so it can stay in production code.
    """
    ctl = current()
    if ctl is not None:
        ctl.fault_point(name)
