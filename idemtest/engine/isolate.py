"""crash="kill": each attempt runs in a forked child process, ended with `os._exit`
at its crash point.

The database then sees what it sees when a production worker dies: the
connection drops, open transactions roll back, committed work stays, and no
`finally`, `except` or atexit handler of the load runs. The child opens its own
connections (the parent's are never touched, nor closed: `os._exit` leaves them
alone), streams every statement boundary to the parent over a pipe, and ends
with one result message; the parent builds the Attempt from them as the
in-process mode does. A load that exits by itself (`os._exit`, a segfault) or
hangs ends its child, never pytest.

POSIX only: it needs `os.fork` (the load is a closure, so it cannot be pickled
to a spawned interpreter), and forking is what makes an attempt cost tens of
milliseconds instead of seconds.
"""

from __future__ import annotations

import gc
import os
import pickle
import select
import signal
import struct
import sys
import threading
import time
import traceback
from typing import TYPE_CHECKING, Any, NoReturn

from .._errors import BackendError, SpecError
from .model import Attempt, Boundary

if TYPE_CHECKING:
    from datetime import datetime

    from .execute import Env
    from .model import Fault, RunStep
    from .properties import VisibilitySampler

# exit codes of the child; a load that exits by itself is told apart by the
# missing result message, not by its code
CRASHED = 86
INTERNAL = 70
_FRAME = struct.Struct("!I")


def available() -> bool:
    return hasattr(os, "fork")


def require_fork() -> None:
    if not available():
        raise SpecError(
            f"crash='kill' runs each attempt in a forked child process, and this platform ({sys.platform}) has no os.fork; "
            "it is POSIX only (Linux, macOS): use crash='raise' (the default) here"
        )


class _Pipe:
    """The child's end: length-prefixed pickles, whole frames even from several threads."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.lock = threading.Lock()

    def send(self, msg: Any) -> None:
        data = pickle.dumps(msg, protocol=pickle.HIGHEST_PROTOCOL)
        frame = _FRAME.pack(len(data)) + data
        with self.lock:
            view = memoryview(frame)
            while view:
                n = os.write(self.fd, view)
                view = view[n:]


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass


def _picklable(e: BaseException) -> BaseException | None:
    try:
        pickle.loads(pickle.dumps(e))
        return e
    except Exception:
        return None


def run_in_child(env: Env, step_no: int, run: RunStep, attempt: int, now: datetime, fault: Fault | None, sampler: VisibilitySampler | None) -> Attempt:
    """One attempt in a child process; the parent waits at most `Spec.timeout`."""
    require_fork()
    rec = Attempt(step_no, run.window, attempt, now, run.tag, fault)
    _flush()  # or the child would inherit, and print again, what the parent has buffered
    with env.sandbox.lent_to_child():
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child ends in os._exit, coverage never hears of it
            os.close(r)
            _child(env, _Pipe(w), step_no, run, attempt, now, fault, sampler)
        os.close(w)
        status: int | None = None
        try:
            msgs, status, hung = _collect(pid, r, env.timeout)
        finally:
            os.close(r)
            if status is None:
                # Ctrl-C (or any error) while waiting: the child must not outlive the wait
                status = _kill(pid)
    trace = [m[1] for m in msgs if m[0] == "b"]
    for m in msgs:
        if m[0] == "o":
            env.sandbox.adopt_session(m[1])
    end = next((m[1] for m in msgs if m[0] == "end"), None)
    internal = next((m[1] for m in msgs if m[0] == "internal"), None)
    if internal is not None:
        raise BackendError(f"crash='kill': the child process could not run the attempt (window {run.window}, attempt {attempt}):\n{internal}")
    rec.trace = trace
    rec.boundaries = end["count"] if end else (trace[-1].index if trace else 0)
    if hung:
        rec.outcome = "hung"
        rec.error = f"did not finish within timeout={env.timeout:g}s (its process was killed)"
    elif end is None:
        rec.outcome = "error"
        rec.error = _exit_text(status, trace)
    else:
        rec.outcome = end["outcome"]
        rec.user_seconds = end["user_seconds"]
        if rec.outcome == "crash":
            rec.at, rec.when = end["at"], end["when"]
        elif rec.outcome == "error":
            rec.error, rec.tb, rec.exception = end["error"], end["tb"], end["exception"]
        if sampler is not None:
            sampler.samples.extend(end["samples"])
            sampler.columns.update(end["columns"])
    return rec


def _exit_text(status: int, trace: list[Boundary]) -> str:
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        try:
            how = f"was killed by signal {signal.Signals(-code).name}"
        except ValueError:
            how = f"was killed by signal {-code}"
    else:
        how = f"exited with code {code}"
    where = f"at boundary {trace[-1].index} ({trace[-1].describe(70)})" if trace else "before its first statement"
    return f"the load's process {how} {where}; a load must return (or raise) rather than end its process"


def _collect(pid: int, fd: int, timeout: float) -> tuple[list[tuple[str, Any]], int | None, bool]:
    """Read the child's messages until it exits; SIGKILL it at the deadline."""
    deadline = time.monotonic() + timeout
    buf = bytearray()
    msgs: list[tuple[str, Any]] = []
    eof = False
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return msgs, _kill(pid), True
        if not eof and select.select([fd], [], [], min(left, 0.2))[0]:
            chunk = os.read(fd, 1 << 16)
            if chunk:
                buf += chunk
                _frames(buf, msgs)
                continue
            eof = True  # the child's end closed: it is exiting
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            # exited; a process the load forked may still hold the pipe open: take what is there
            while not eof and select.select([fd], [], [], 0)[0]:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    break
                buf += chunk
            _frames(buf, msgs)
            return msgs, status, False
        if eof:
            time.sleep(0.001)


def _frames(buf: bytearray, msgs: list[tuple[str, Any]]) -> None:
    while len(buf) >= _FRAME.size:
        (n,) = _FRAME.unpack_from(buf)
        if len(buf) < _FRAME.size + n:
            return
        msgs.append(pickle.loads(bytes(buf[_FRAME.size : _FRAME.size + n])))
        del buf[: _FRAME.size + n]


def _kill(pid: int) -> int:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        return os.waitpid(pid, 0)[1]
    except ChildProcessError:
        return 0


def _child(env: Env, out: _Pipe, step_no: int, run: RunStep, attempt: int, now: datetime, fault: Fault | None, sampler: VisibilitySampler | None) -> NoReturn:  # pragma: no cover - runs in the child
    code = INTERNAL
    try:
        # nothing the parent owns may be finalized here: a psycopg connection's
        # finalizer would end the parent's session on the shared socket
        gc.freeze()
        # the parent counts the child's sessions as its own (PostgreSQL's `unseen` check);
        # streamed, so a child that dies still said what it opened
        env.sandbox.on_open = lambda pid: out.send(("o", pid))
        env.sandbox.enter_child()
        rec, ctl, ctx = env.new_attempt(step_no, run, attempt, now, fault)
        observe = sampler.observe if sampler is not None else None

        def gate(c: Any, b: Boundary) -> None:
            out.send(("b", b))  # streamed: a process that dies on its own still says where
            if observe is not None:
                observe(c, b)

        def samples() -> dict[str, Any]:
            if sampler is None:
                return {"samples": [], "columns": {}}
            return {"samples": sampler.samples, "columns": sampler.columns}

        t0 = time.perf_counter()

        def on_crash(c: Any) -> None:
            # the kill: nothing of the load runs after this point, not even its finally
            exc = c.crashed
            out.send(("end", {"outcome": "crash", "at": exc.boundary, "when": exc.when, "count": ctl.count, "user_seconds": time.perf_counter() - t0, **samples()}))
            _flush()
            os._exit(CRASHED)

        ctl.gate = gate
        ctl.on_crash.insert(0, on_crash)
        env.work(rec, ctl, ctx)
        ctl.close_all()  # a process that returns closes its connections on the way out (a killed one does not)
        end = {"outcome": rec.outcome, "count": ctl.count, "user_seconds": rec.user_seconds, **samples()}
        if rec.outcome == "error":
            end.update(error=rec.error, tb=rec.tb, exception=_picklable(rec.exception) if rec.exception is not None else None)
        elif rec.outcome == "crash":  # an abort: not a planned kill
            end.update(at=rec.at, when=rec.when)
        out.send(("end", end))
        code = 0
    except BaseException:
        try:
            out.send(("internal", traceback.format_exc(limit=8)))
        except BaseException:
            pass
    finally:
        _flush()
        os._exit(code)
