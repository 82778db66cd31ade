"""`--idem-db duckdb-file` leaves no file behind: not after a normal exit, Ctrl-C
or SIGTERM; after kill -9 the next run removes what the dead process left.
(PostgreSQL databases: tests/postgres/test_cleanup.py.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import idemtest

ROOT = Path(idemtest.__file__).resolve().parents[1]

PROJECT = """
import idemtest
from idemtest import Source, Spec, Target, hourly

SETUP = '''
CREATE SCHEMA src; CREATE SCHEMA analytics;
CREATE TABLE src.orders(order_id BIGINT, amount DOUBLE, updated_at TIMESTAMP);
CREATE TABLE analytics.orders(order_id BIGINT PRIMARY KEY, amount DOUBLE, updated_at TIMESTAMP);
'''
spec = Spec(
    setup=SETUP,
    sources=[Source("src.orders", columns={"order_id": "BIGINT", "amount": "DOUBLE", "updated_at": "TIMESTAMP"},
                    key="order_id", event_time="updated_at", max_rows=4)],
    targets=[Target("analytics.orders", key="order_id")],
    schedule=hourly("2026-06-01", periods=2),
    concurrency="none",
)

@idemtest.check(spec)
def test_upsert(run):
    run.conn.execute(
        "INSERT INTO analytics.orders SELECT * FROM src.orders ON CONFLICT (order_id) DO UPDATE "
        "SET amount = excluded.amount, updated_at = excluded.updated_at WHERE excluded.updated_at > analytics.orders.updated_at"
    )
"""


# the same load wrapped as many real loads are: an `except Exception` that logs and goes
# on; DuckDB turns a Ctrl-C landing in a statement into an exception, which it drops
SWALLOWING = PROJECT.replace(
    """def test_upsert(run):
    run.conn.execute(""",
    """def test_upsert(run):
  try:
    run.conn.execute("SELECT count(DISTINCT range % 1000003) FROM range(12000000)")  # a slow statement
    run.conn.execute(""",
).replace('analytics.orders.updated_at"\n    )', 'analytics.orders.updated_at"\n    )\n  except Exception as e:\n    print("load failed:", e)')


def _start(project: Path, tmp: Path, examples: int, text: str = PROJECT) -> subprocess.Popen[str]:
    (project / "test_project.py").write_text(text)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp)}  # the temp folder the run uses
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "--idempotency", "--idem-db", "duckdb-file", "--idem-examples", str(examples), "-p", "no:cacheprovider", "-q"],
        cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def _ours(tmp: Path) -> list[str]:
    """What idemtest left in the temp folder (pytest's own folders aside)."""
    return sorted(p.name for p in tmp.iterdir() if p.name.startswith("idemtest"))


def _wait_for_files(tmp: Path, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if any(f.suffix == ".duckdb" for d in tmp.glob("idemtest-duckdb-*") for f in d.iterdir()):
            return
        time.sleep(0.1)
    raise AssertionError(f"the run never made a sandbox file under {tmp}: {_ours(tmp)}")


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "project").mkdir()
    (tmp_path / "tmp").mkdir()
    return tmp_path / "project", tmp_path / "tmp"


def test_a_normal_run_leaves_no_file(dirs: tuple[Path, Path]) -> None:
    project, tmp = dirs
    proc = _start(project, tmp, 5)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    assert "1 passed" in out
    assert _ours(tmp) == []


@pytest.mark.parametrize(
    ("sig", "text"),
    [(signal.SIGINT, PROJECT), (signal.SIGTERM, PROJECT), (signal.SIGINT, SWALLOWING)],
    ids=["ctrl-c", "sigterm", "ctrl-c-in-a-load-that-swallows-errors"],
)
def test_an_interrupted_run_leaves_no_file(dirs: tuple[Path, Path], sig: int, text: str) -> None:
    project, tmp = dirs
    proc = _start(project, tmp, 5000, text)
    try:
        _wait_for_files(tmp)
        sent = time.monotonic()
        proc.send_signal(sig)
        proc.wait(30)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert took < 10.0, f"{took:.1f}s to stop"  # ~1-5 s; the margin is for a loaded CI machine
    assert _ours(tmp) == []
    assert proc.stdout is not None
    out = proc.stdout.read()
    assert "KeyboardInterrupt" in out and "INTERNALERROR" not in out, out


def test_a_ctrl_c_in_the_detach_of_a_used_sandbox_still_removes_its_file_and_stops(monkeypatch: pytest.MonkeyPatch) -> None:
    """Seen under load (1 run in 3 with a busy CPU): a file sandbox's DETACH syncs to disk,
    a Ctrl-C landing there came back as DuckDB's `Query interrupted` exception, the cleanup's
    `except Exception` dropped it and the check ran on (the run ignored Ctrl-C for 30 s+)."""
    import duckdb

    from idemtest.engine.search import Checker
    from idemtest.sandbox import get_backend
    from idemtest.sandbox.base import clear_stop

    backend = get_backend("duckdb-file")
    sb = backend.create()
    assert sb.file and os.path.exists(sb.file)
    real = backend.instance

    class InterruptedDetach:  # the one statement the signal lands in; the rest is the real instance
        def execute(self, sql: str, *a: object) -> object:
            if sql.startswith("DETACH"):
                real.execute(sql, *a)
                raise duckdb.InterruptException("INTERRUPT Error: Query interrupted")
            return real.execute(sql, *a)

    monkeypatch.setattr(backend, "_instance", InterruptedDetach())
    try:
        with pytest.raises(KeyboardInterrupt):
            Checker._drop(sb)
        assert not os.path.exists(sb.file)
        # the stop stays until the check ends: the next scenario boundary ends it too
        with pytest.raises(KeyboardInterrupt):
            Checker._drop(get_backend("duckdb").create())
    finally:
        clear_stop()


def test_after_kill_9_the_next_run_removes_the_files(dirs: tuple[Path, Path]) -> None:
    project, tmp = dirs
    proc = _start(project, tmp, 5000)
    try:
        _wait_for_files(tmp)
    finally:
        proc.kill()
        proc.wait()
    left = _ours(tmp)
    assert left and all(name.startswith(f"idemtest-duckdb-{proc.pid}-") for name in left)  # kill -9 runs no cleanup
    again = _start(project, tmp, 2)
    out, _ = again.communicate(timeout=300)
    assert again.returncode == 0, out
    assert _ours(tmp) == []
