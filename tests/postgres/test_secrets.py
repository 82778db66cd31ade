"""No password of a DSN is ever printed: not in a report, a traceback with
locals (`pytest -l`), junitxml, a saved failure, or an echoed replay command.

The server here trusts local connections, so a DSN may carry a sentinel
password that libpq sends and nobody checks: every byte idemtest writes is
then searched for it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import idemtest
from idemtest.sandbox import redact
from idemtest.sandbox.postgres.dsn import parse_dsn, without_password

pytestmark = pytest.mark.postgres

SENTINEL = "Sentinel-pw-7Q"
ROOT = Path(idemtest.__file__).resolve().parents[1]

TESTS = """
import idemtest
from idemtest import Source, Spec, Target, hourly

SETUP = '''
CREATE SCHEMA src; CREATE SCHEMA analytics;
CREATE TABLE src.orders(order_id BIGINT, amount NUMERIC(12,2), updated_at TIMESTAMP);
CREATE TABLE analytics.orders(order_id BIGINT, amount NUMERIC(12,2), updated_at TIMESTAMP);
'''
spec = Spec(
    setup=SETUP,
    sources=[Source("src.orders", columns={"order_id": "BIGINT", "amount": "NUMERIC(12,2)", "updated_at": "TIMESTAMP"},
                    key="order_id", event_time="updated_at", max_rows=4)],
    targets=[Target("analytics.orders", key="order_id")],
    schedule=hourly("2026-06-01", periods=2),
    exercise=["duplicate"],
)

@idemtest.check(spec)
def test_bare_insert(run):
    with run.conn.cursor() as cur:
        cur.execute("INSERT INTO analytics.orders SELECT * FROM src.orders WHERE updated_at >= %s AND updated_at < %s",
                    (run.window.start, run.window.end))
    run.conn.commit()

def test_fixture_form_then_a_plain_failure(idempotency):
    dsn_like = idempotency  # a local that -l shows
    assert dsn_like is None, "a plain assertion, to print the locals of this frame"
"""


def _dsns(pg_dsn: str) -> list[str]:
    p = parse_dsn(pg_dsn)
    host, port, user, db = p.get("host", "127.0.0.1"), p.get("port", "5432"), p.get("user", "postgres"), p.get("dbname", "postgres")
    return [
        f"postgresql://{user}:{SENTINEL}@{host}:{port}/{db}",
        f"host={host} port={port} user={user} dbname={db} password='{SENTINEL} x'",
    ]


@pytest.mark.parametrize("form", [0, 1], ids=["url", "key-value quoted"])
def test_a_failing_run_prints_no_password(pg_dsn: str, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, form: int) -> None:
    dsn = _dsns(pg_dsn)[form]
    pytester.makepyfile(test_pipe=TESTS)
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # this checkout's idemtest in the subprocess
    junit = pytester.path / "out.xml"
    result = pytester.runpytest_subprocess("--idempotency", "--idem-db", dsn, "--idem-examples", "20", "--idem-shrink-seconds", "1", "-l", f"--junitxml={junit}", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=2)
    out = result.stdout.str() + result.stderr.str()
    assert "P2 declared keys stay unique" in out  # the check really ran on the server
    written = [out, junit.read_text()]
    saved = sorted((pytester.path / ".idemtest" / "failures").glob("*.json"))
    assert saved
    written += [p.read_text() for p in saved]
    for text in written:
        assert SENTINEL not in text
    # the printed replay command names the server (without the password), so it replays as printed
    replay = next(line for line in out.splitlines() if line.startswith("Replay: "))
    assert "--idem-db" in replay and without_password(dsn) in replay.replace("'", "")


def test_the_replay_echo_prints_no_password(pg_dsn: str, tmp_path: Path) -> None:
    saved = tmp_path / "f.json"
    saved.write_text('{"test": "test_x.py::test_x", "db": "postgres", "scenario": {"data": {}, "steps": []}}')
    dsn = _dsns(pg_dsn)[0]
    proc = subprocess.run(
        [sys.executable, "-m", "idemtest.cli", "replay", str(saved), "--idem-db", dsn, "-p", "no:cacheprovider"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert "idemtest replay: pytest" in proc.stdout
    assert SENTINEL not in proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("dsn", "shown"),
    [
        ("postgresql://alice:s3cret@db:5432/x", "postgresql://alice:***@db:5432/x"),
        ("postgresql://alice:p@ss:w0rd@db/x", "postgresql://alice:***@db/x"),
        ("postgres://alice:%40s3cret@db/x", "postgres://alice:***@db/x"),
        ("host=db user=alice password=s3cret dbname=x", "host=db user=alice password=*** dbname=x"),
        ("host=db password='se cret' user=alice", "host=db password=*** user=alice"),
        ('host=db password="se\\"cret" user=alice', "host=db password=*** user=alice"),
        ("postgresql://alice@db/x?sslmode=require&password=s3cret", "postgresql://alice@db/x?sslmode=require&password=***"),
        ("PGPASSWORD=s3cret psql", "PGPASSWORD=*** psql"),
        ("postgresql://alice@db/x", "postgresql://alice@db/x"),
        ("cannot reach postgresql://a:pw1@h/d nor postgresql://b:pw2@h/d", "cannot reach postgresql://a:***@h/d nor postgresql://b:***@h/d"),
    ],
)
def test_redact_every_form(dsn: str, shown: str) -> None:
    assert redact(dsn) == shown


@pytest.mark.parametrize(
    ("dsn", "plain"),
    [
        ("postgresql://alice:s3cret@db:5432/x", "postgresql://alice@db:5432/x"),
        ("postgresql://alice@db/x?password=s3cret&sslmode=require", "postgresql://alice@db/x?sslmode=require"),
        ("host=db user=alice password='se cret' dbname=x", "host=db user=alice dbname=x"),
    ],
)
def test_without_password(dsn: str, plain: str) -> None:
    assert without_password(dsn) == plain


def test_reprs_that_tracebacks_show_are_redacted(pg_dsn: str) -> None:
    from idemtest.engine.search import Config
    from idemtest.sandbox import parse_db

    dsn = _dsns(pg_dsn)[0]
    shown: list[Any] = [Config(db=dsn), parse_db(dsn)]
    for obj in shown:
        assert SENTINEL not in repr(obj)
