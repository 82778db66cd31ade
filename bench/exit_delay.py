"""How long does a PostgreSQL run take to exit, and what does it leave on the server?

    python bench/exit_delay.py [--dsn postgresql://postgres@127.0.0.1:5432/postgres]
                               [--root CHECKOUT] [--checks 4] [--examples 30] [--repeat 2]

Runs a small project of `--checks` correct checks through `pytest --idempotency
--idem-db DSN` in a subprocess importing idemtest from `--root` (default: this
checkout; point it at an older checkout to compare), and prints per mode:

  normal   seconds between the summary line ("N passed") and the process exit
  ctrl-c   seconds between SIGINT (sent once the run has a sandbox) and the exit
  sigterm  the same for SIGTERM (a CI runner cancelling the job)

with the databases of that process (`idemtest_<host>_<pid>_…`) left on the server
1 s after it exited. Only databases named idemtest_* are created; the figures
go to stdout, nothing is asserted (tests/postgres/test_cleanup.py asserts).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import psycopg

HERE = Path(__file__).resolve().parents[1]

sys.path.insert(0, str(HERE))
from tests.postgres.upsert_project import project as project_text  # noqa: E402  (the project text tests/postgres/test_cleanup.py runs too)


def host_tag() -> str:
    import hashlib
    import socket

    return hashlib.sha1(socket.gethostname().encode()).hexdigest()[:4]


def left(admin: psycopg.Connection, pid: int) -> int:
    rows = admin.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", [f"idemtest\\_{host_tag()}\\_{pid}\\_%"]).fetchall()
    return len(rows)


def start(project: Path, root: Path, dsn: str, examples: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "--idempotency", "--idem-db", dsn, "--idem-examples", str(examples), "-p", "no:cacheprovider", "-q", "-p", "no:randomly"],
        cwd=project, env={**os.environ, "PYTHONPATH": str(root)}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def normal(project: Path, root: Path, dsn: str, examples: int, admin: psycopg.Connection) -> tuple[float, int, float]:
    t0 = time.monotonic()
    proc = start(project, root, dsn, examples)
    summary = None
    assert proc.stdout is not None
    for line in proc.stdout:
        if re.search(r"\d+ (passed|failed)", line):
            summary = time.monotonic()
    proc.wait()
    end = time.monotonic()
    time.sleep(1.0)
    return end - (summary or end), left(admin, proc.pid), end - t0


def interrupted(project: Path, root: Path, dsn: str, admin: psycopg.Connection, sig: int) -> tuple[float, int, float]:
    t0 = time.monotonic()
    proc = start(project, root, dsn, 5000)
    deadline = time.monotonic() + 120
    while left(admin, proc.pid) == 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(2.0)  # into the checks: sandboxes in use, the pool refilling, drops queued
    sent = time.monotonic()
    proc.send_signal(sig)
    try:
        proc.wait(180)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    end = time.monotonic()
    time.sleep(1.0)
    return end - sent, left(admin, proc.pid), end - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dsn", default=os.environ.get("IDEMTEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"))
    ap.add_argument("--root", type=Path, default=HERE, help="the checkout whose idemtest runs")
    ap.add_argument("--checks", type=int, default=4)
    ap.add_argument("--examples", type=int, default=30)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--modes", default="normal,ctrl-c,sigterm")
    args = ap.parse_args()
    admin = psycopg.connect(args.dsn, autocommit=True)
    with tempfile.TemporaryDirectory(prefix="idemtest-bench-") as tmp:
        project = Path(tmp)
        body = project_text(*(str(i) for i in range(args.checks)))
        (project / "test_project.py").write_text(textwrap.dedent(body))
        print(f"idemtest from {args.root}; {args.checks} checks x {args.examples} examples on {args.dsn.split('@')[-1]}")
        for mode in args.modes.split(","):
            runs = []
            for _ in range(args.repeat):
                if mode == "normal":
                    runs.append(normal(project, args.root, args.dsn, args.examples, admin))
                else:
                    runs.append(interrupted(project, args.root, args.dsn, admin, signal.SIGINT if mode == "ctrl-c" else signal.SIGTERM))
            delays = [r[0] for r in runs]
            what = "summary -> exit" if mode == "normal" else "signal -> exit"
            print(
                f"{mode:8} {what}: median {statistics.median(delays):6.2f}s max {max(delays):6.2f}s "
                f"(runs {', '.join(f'{d:.2f}' for d in delays)}); databases left: {[r[1] for r in runs]}; wall {sum(r[2] for r in runs):.0f}s"
            )
    admin.close()


if __name__ == "__main__":
    main()
