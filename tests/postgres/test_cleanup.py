"""Nothing is left behind on the server: after a normal exit (promptly, not
minutes after the summary), Ctrl-C, SIGTERM and an xdist run no sandbox of the
session remains; after kill -9 the next run sweeps them."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import idemtest

from .conftest import databases
from .upsert_project import project

pytestmark = pytest.mark.postgres

ROOT = Path(idemtest.__file__).resolve().parents[1]

PROJECT = project("a", "b")


def _ours(admin: Any, tag: str) -> set[str]:
    assert len(tag) <= 8, "names carry at most 8 characters of the worker tag"
    return {d for d in databases(admin) if re.match(rf"^idemtest_[0-9a-f]{{4}}_\d+_{tag}_", d)}


def _start(tmp_path: Path, pg_dsn: str, tag: str, *args: str) -> subprocess.Popen[str]:
    (tmp_path / "test_project.py").write_text(PROJECT)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTEST_XDIST_WORKER": tag}  # the tag names this run's databases
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "--idempotency", "--idem-db", pg_dsn, "-p", "no:cacheprovider", "-q", *args],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def _wait_for(admin: Any, tag: str, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if _ours(admin, tag):
            return
        time.sleep(0.2)
    raise AssertionError(f"the run never created a sandbox tagged {tag}")


def test_a_normal_run_exits_promptly_and_leaves_nothing(tmp_path: Path, pg_dsn: str, admin: Any) -> None:
    proc = _start(tmp_path, pg_dsn, "cleanok", "--idem-examples", "15")
    summary_at = None
    out = []
    assert proc.stdout is not None
    for line in proc.stdout:
        out.append(line)
        if re.search(r"\d+ passed", line):
            summary_at = time.monotonic()
    proc.wait(120)
    exited_at = time.monotonic()
    text = "".join(out)
    assert proc.returncode == 0, text
    assert summary_at is not None, text
    # dropping happens during the run: the exit does not wait minutes after the summary
    assert exited_at - summary_at < 8.0, f"{exited_at - summary_at:.1f}s between the summary and the exit"
    assert _ours(admin, "cleanok") == set()


@pytest.mark.parametrize(("sig", "tag"), [(signal.SIGINT, "cleanint"), (signal.SIGTERM, "clterm")], ids=["ctrl-c", "sigterm"])
def test_an_interrupted_run_drops_its_sandboxes(tmp_path: Path, pg_dsn: str, admin: Any, sig: int, tag: str) -> None:
    proc = _start(tmp_path, pg_dsn, tag, "--idem-examples", "2000")
    try:
        _wait_for(admin, tag)
        time.sleep(1.0)
        sent = time.monotonic()
        proc.send_signal(sig)
        proc.wait(30)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
    assert took < 10.0, f"the run took {took:.1f}s to stop"
    assert _ours(admin, tag) == set()


def test_after_kill_9_the_next_run_sweeps(tmp_path: Path, pg_dsn: str, admin: Any) -> None:
    from idemtest.sandbox.postgres import PostgresBackend

    proc = _start(tmp_path, pg_dsn, "clkill", "--idem-examples", "2000")
    try:
        _wait_for(admin, "clkill")
        time.sleep(1.0)
    finally:
        proc.kill()
        proc.wait(30)
    left = _ours(admin, "clkill")
    assert left  # kill -9 runs no cleanup
    PostgresBackend(pg_dsn).close()  # the next session's start-up sweep
    deadline = time.monotonic() + 10
    while _ours(admin, "clkill") and time.monotonic() < deadline:  # FORCE-less drops wait for the killed sessions to go
        time.sleep(0.5)
        PostgresBackend(pg_dsn).close()
    assert _ours(admin, "clkill") == set()


def test_an_xdist_run_leaves_nothing(tmp_path: Path, pg_dsn: str, admin: Any) -> None:
    pytest.importorskip("xdist")
    from idemtest.sandbox.postgres.names import _host_tag, _pid_alive

    started = int(time.time())
    (tmp_path / "test_project.py").write_text(PROJECT)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--idempotency", "--idem-db", pg_dsn, "-n", "2", "-p", "no:cacheprovider", "-q", "--idem-examples", "20"],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 check(s) on PostgreSQL" in proc.stdout  # one summary for both workers
    host = _host_tag()
    leaked = []
    for d in databases(admin):
        m = re.match(rf"^idemtest_{host}_(\d+)_gw\d+_([0-9a-f]{{8}})_", d)
        if m and int(m.group(2), 16) >= started and not _pid_alive(int(m.group(1))):
            leaked.append(d)  # made by a worker of that run, which is gone
    assert leaked == []
