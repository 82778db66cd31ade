"""Connection proxies: every statement boundary goes through a Controller.

The Controller counts boundaries (statements, commits, cursors, fault points),
records a trace, injects the planned crash, and — for concurrent runs — waits
for its turn from the scheduler. Backends wrap their driver's connections with
proxies that call `Controller.boundary` around each statement.

A run is a process: every thread it starts belongs to it. While a run is live,
`threading.Thread.start` and `ThreadPoolExecutor.submit` carry the starting
thread's controller into the new thread / task, and a thread with no
controller of its own that connects to a sandbox gets the one live run's (two
live runs and no way to tell: `UninstrumentedError`, never a silent pass).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ._errors import InjectedCrash, UninstrumentedError
from .engine.model import Boundary, Fault, abbreviate

__all__ = ["Boundary", "Controller", "Fault", "abbreviate", "activate", "begin_run", "current", "end_run", "fault_point", "live_runs", "note_unseen"]

_local = threading.local()
_runs: list[Controller] = []  # the live runs: begun by the harness, not yet finished
_runs_lock = threading.Lock()


class Controller:
    """Per-run-attempt boundary counter and crash injector; shared by every thread of the run."""

    def __init__(self, label: str, fault: Fault | None = None, gate: Callable[[Controller, Boundary], None] | None = None) -> None:
        self.label = label
        self.fault = fault
        self.gate = gate  # the concurrent scheduler's turn-taking hook
        self.count = 0
        self.trace: list[Boundary] = []
        self.crashed: InjectedCrash | None = None
        self.aborted = False  # the harness gave up on this run (timeout, abandoned example)
        self.finished = False  # the harness is done with this attempt (its connections are closed)
        self.abandoned = False  # the harness stopped waiting for the load's thread: it records nothing more
        self.ended = threading.Event()  # the load returned, or the process died at the crash point
        self.closers: list[Callable[[], None]] = []
        self.interrupters: list[Callable[[], None]] = []
        self.after_hooks: list[Callable[[Controller, Boundary], None]] = []
        self.on_crash: list[Callable[[Controller], None]] = []
        self.unseen: list[str] = []  # statements that reached the sandbox on a path this run did not instrument
        self.home: int | None = None  # ident of the thread that runs the load
        self.user_ns: float = 0.0
        # boundaries come from every thread of the run: count, trace and the crash are one critical section
        self._lock = threading.RLock()
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
        thread = _thread_label(self.home)
        with self._lock:
            self._check_alive()
            self.count += 1
            b = Boundary(self.count, kind, "" if text is None else str(text), self.label, thread=thread)
            if self.gate is None:
                self.trace.append(b)
        if self.gate is not None:
            self.gate(self, b)  # blocks until the scheduler grants the turn: never under the lock
            with self._lock:
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
            # the process is dead: whatever user code tries next, on any thread, never happens
            raise InjectedCrash(self.crashed.boundary, self.crashed.when, "process already crashed")
        if self.aborted:
            raise InjectedCrash(None, "abort", "run aborted by idemtest")

    def _crash(self, b: Boundary, when: str) -> None:
        exc = InjectedCrash(b, when, f"idemtest injected a crash {when} boundary {b.index} ({b.describe()})")
        with self._lock:
            first = self.crashed is None
            if first:
                self.crashed = exc
        if first:
            # the harness stops waiting for the load now: a dead process runs no `finally`
            for hook in list(self.on_crash):
                try:
                    hook(self)
                except Exception:
                    pass
            self.ended.set()
        raise exc

    # --- connections -------------------------------------------------------
    def register(self, close: Callable[[], None], interrupt: Callable[[], None] | None = None) -> None:
        with self._lock:
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
        with self._lock:
            closers, self.closers = list(self.closers), []
        for close in reversed(closers):
            try:
                close()
            except Exception:
                pass

    def interrupt_all(self) -> None:
        self.aborted = True
        with self._lock:
            interrupters = list(self.interrupters)
        for interrupt in interrupters:
            try:
                interrupt()
            except Exception:
                pass

    @property
    def threads(self) -> dict[str, int]:
        """Boundaries per thread ('' = the run's own thread), in first-seen order."""
        out: dict[str, int] = {}
        for b in self.trace:
            out[b.thread] = out.get(b.thread, 0) + 1
        return out


def _thread_label(home: int | None) -> str:
    t = threading.current_thread()
    return "" if home is None or t.ident == home else t.name


# --- which run a thread belongs to ------------------------------------------------------
def begin_run(ctl: Controller) -> None:
    """The harness starts an attempt: until `end_run`, threads may be attributed to it."""
    _install_thread_patches()
    with _runs_lock:
        _runs.append(ctl)


def end_run(ctl: Controller) -> None:
    with _runs_lock:
        ctl.finished = True
        if ctl in _runs:
            _runs.remove(ctl)


def live_runs() -> list[Controller]:
    with _runs_lock:
        return list(_runs)


def current() -> Controller | None:
    """The controller of the run this thread belongs to, if any.

    A thread started (or a pool task submitted) by a run's thread carries that
    run's controller. A thread with none — a pool thread that predates the run,
    or whose run is over — belongs to the one live run; with two live runs it
    cannot be told apart, which is an error rather than an uninstrumented path."""
    ctl: Controller | None = getattr(_local, "controller", None)
    if ctl is not None and (not ctl.finished or ctl.crashed is not None):
        return ctl  # an abandoned thread of a crashed run keeps its dead controller: its statements raise
    runs = live_runs()
    if not runs:
        return None
    if len(runs) == 1:
        return runs[0]
    msg = (
        f"thread {threading.current_thread().name!r} connected to the sandbox while {len(runs)} runs are live "
        f"({', '.join(r.label for r in runs)}) and it was started by none of them, so idemtest cannot tell whose "
        "statements these are; start the load's threads (or its pool) inside the load function, or submit work to a pool "
        "from the run's own thread"
    )
    note_unseen(msg)
    raise UninstrumentedError(msg)


def note_unseen(path: str) -> None:
    """A statement reached a sandbox on a path no run instrumented: every live run fails its check."""
    for r in live_runs():
        with r._lock:
            if path not in r.unseen:
                r.unseen.append(path)


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


# --- threads inherit the run ----------------------------------------------------------------
_patched = False
_patch_lock = threading.Lock()


def _install_thread_patches() -> None:
    """Wrap `Thread.start` and `ThreadPoolExecutor.submit` (once; a no-op outside runs):
    a thread or pool task started by a run's thread runs under that run's controller."""
    global _patched
    if _patched:
        return
    with _patch_lock:
        if _patched:
            return
        from concurrent.futures import ThreadPoolExecutor

        orig_start = threading.Thread.start
        orig_submit = ThreadPoolExecutor.submit

        def start(self: threading.Thread) -> None:
            ctl = getattr(_local, "controller", None)
            if ctl is not None and not ctl.finished:
                run = self.run

                def run_in_ctl() -> None:
                    _local.controller = ctl
                    try:
                        run()
                    finally:
                        # the thread <-> wrapper cycle would keep the thread (and what its
                        # target holds, e.g. a multiprocessing pool) alive until a GC pass
                        self.__dict__.pop("run", None)

                self.run = run_in_ctl  # type: ignore[method-assign]
            orig_start(self)

        def submit(self: Any, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
            ctl = getattr(_local, "controller", None)
            if ctl is None or ctl.finished:
                return orig_submit(self, fn, *args, **kwargs)

            def task() -> Any:
                prev = getattr(_local, "controller", None)
                _local.controller = ctl
                try:
                    return fn(*args, **kwargs)
                finally:
                    _local.controller = prev

            return orig_submit(self, task)

        threading.Thread.start = start  # type: ignore[method-assign]
        ThreadPoolExecutor.submit = submit  # type: ignore[method-assign]
        _patched = True
