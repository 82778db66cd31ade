"""No password of a DSN is ever printed: not in a report, a traceback with
locals (`pytest -l`), junitxml, a saved failure, or an echoed replay command.

The server here trusts local connections, so a DSN may carry a sentinel
password that libpq sends and nobody checks: every byte idemtest writes is
then searched for it."""

from __future__ import annotations

import os
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


def _dsns(pg_dsn: str) -> dict[str, str]:
    p = parse_dsn(pg_dsn)
    host, port, user, db = p.get("host", "127.0.0.1"), p.get("port", "5432"), p.get("user", "postgres"), p.get("dbname", "postgres")
    return {
        "url": f"postgresql://{user}:{SENTINEL}@{host}:{port}/{db}",
        "url with %40": f"postgresql://{user}:{AT_SENTINEL.replace('@', '%40')}@{host}:{port}/{db}",
        "key=value": f"host={host} port={port} user={user} dbname={db} password={SENTINEL}",
        "key=value quoted": f"host={host} port={port} user={user} dbname={db} password='{SENTINEL} x'",
    }


AT_SENTINEL = "Sentinel@pw-7Q"  # a password with an '@' in it
SECRETS = (SENTINEL, "pw-7Q", AT_SENTINEL.replace("@", "%40"))  # any part of any form


def _run(args: list[str], cwd: Path, module: bool = False) -> str:
    """Every byte a command writes to stdout and stderr."""
    cmd = [sys.executable, "-m", "idemtest.cli" if module else "pytest", *args]
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": f"{cwd}{os.pathsep}{ROOT}"})
    return f"rc={proc.returncode}\n{proc.stdout}\n{proc.stderr}"


def _no_secret(texts: list[str]) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, f"{secret!r} printed in:\n{text[:3000]}"


@pytest.mark.parametrize("form", ["url", "url with %40", "key=value", "key=value quoted"])
def test_a_failing_run_and_its_replay_print_no_password(pg_dsn: str, tmp_path: Path, form: str) -> None:
    """A failing run with `-l --junitxml`, then `idemtest replay` of what it saved (its
    echoed command, the replay's report, its own junit file): no byte holds the password."""
    dsn = _dsns(pg_dsn)[form]
    (tmp_path / "test_pipe.py").write_text(TESTS)
    opts = ["--idem-db", dsn, "--idem-examples", "5", "--idem-shrink-seconds", "0", "-l", "-p", "no:cacheprovider"]
    out = _run(["--idempotency", *opts, f"--junitxml={tmp_path / 'run.xml'}"], tmp_path)
    assert "rc=1" in out and "2 failed" in out, out
    assert "P2 declared keys stay unique" in out  # the check really ran on the server
    saved = sorted((tmp_path / ".idemtest" / "failures").glob("*.json"))
    assert len(saved) == 1
    # the printed replay command names the server (without the password), so it replays as printed
    replay = next(line for line in out.splitlines() if line.startswith("Replay: "))
    assert "--idem-db" in replay and without_password(dsn) in replay.replace("'", "")
    again = _run(["replay", str(saved[0]), *opts, f"--junitxml={tmp_path / 'replay.xml'}"], tmp_path, module=True)
    assert "idemtest replay: pytest " in again and "1 failed" in again and "VIOLATED" in again, again
    written = [out, again, (tmp_path / "run.xml").read_text(), (tmp_path / "replay.xml").read_text(), saved[0].read_text()]
    _no_secret(written)


def test_an_unencoded_at_in_the_password_is_a_usage_error_printing_no_part_of_it(pg_dsn: str, tmp_path: Path) -> None:
    # libpq ends the password at the first '@' and takes the rest for the host: its
    # "cannot resolve host" error would print that part of the password
    p = parse_dsn(pg_dsn)
    dsn = f"postgresql://{p.get('user', 'postgres')}:{AT_SENTINEL}@{p.get('host', '127.0.0.1')}:{p.get('port', '5432')}/{p.get('dbname', 'postgres')}"
    (tmp_path / "test_pipe.py").write_text(TESTS)
    saved = tmp_path / "f.json"
    saved.write_text('{"test": "test_pipe.py::test_bare_insert", "db": "postgres", "scenario": {"data": {}, "steps": []}}')
    junit = tmp_path / "run.xml"
    outs = [
        _run(["--idempotency", "--idem-db", dsn, "-l", f"--junitxml={junit}", "-p", "no:cacheprovider"], tmp_path),
        _run(["replay", str(saved), "--idem-db", dsn, "-l", "-p", "no:cacheprovider"], tmp_path, module=True),
    ]
    for out in outs:
        assert "rc=4" in out and "the user or password holds an unencoded '@'" in out and "%40" in out, out
        assert "INTERNALERROR" not in out
    _no_secret(outs + ([junit.read_text()] if junit.exists() else []))


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

    dsn = _dsns(pg_dsn)["url"]
    shown: list[Any] = [Config(db=dsn), parse_db(dsn)]
    for obj in shown:
        assert SENTINEL not in repr(obj)
