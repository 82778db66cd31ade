"""The `idemtest` command: `replay FILE` and `review PATH`."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="idemtest", description="Prove data-pipeline loads are idempotent.")
    sub = parser.add_subparsers(dest="command", metavar="{replay,review}")
    rp = sub.add_parser("replay", help="replay a saved failure (runs the test that saved it, through pytest)")
    rp.add_argument("file", help="a JSON file from .idemtest/failures/")
    rp.add_argument("--idem-db", default=None, help="sandbox to replay on (default: the one it failed on)")
    sub.add_parser("review", help="static review of pipeline code: file:line | issue | risk | fix", add_help=False)
    if args[:1] == ["review"]:
        from .review import main as review_main

        return int(review_main(args[1:]))
    # options may come before or after the file; what idemtest does not know goes to pytest
    ns, extra = parser.parse_known_args(args)
    if ns.command == "replay":
        return replay(ns.file, ns.idem_db, extra)
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    parser.print_help()
    return 2


def replay(file: str, db: str | None, extra: list[str]) -> int:
    from ._errors import IdemtestError
    from .engine.report import load_failure
    from .sandbox import saved_db

    try:
        payload = load_failure(file)
    except IdemtestError as e:
        print(f"idemtest replay: {e}", file=sys.stderr)
        return 2
    test = payload.get("test")
    if not test or not isinstance(test, str):
        print(f"idemtest replay: {file} was not saved by a pytest test; call idemtest.replay(file, spec, load) from Python", file=sys.stderr)
        return 2
    from .engine.report import other_version

    note = other_version(file, payload)
    if note is not None:
        print(f"idemtest replay: warning: {note}", file=sys.stderr)
    import pytest

    saved = saved_db(payload.get("db"))
    if db is None and saved.server:
        # the DSN is never saved (it may hold a password): ask for it
        print(f"idemtest replay: {file} failed on PostgreSQL; pass the server with --idem-db postgresql://user@host:port/db", file=sys.stderr)
        return 2
    db = db or saved.text
    args = [test, "--idempotency", "--idem-replay", file, "--idem-db", db, *extra]
    from .sandbox import redact

    print(f"idemtest replay: pytest {' '.join(redact(a) for a in args)}", flush=True)  # never echo a password
    rc = int(pytest.main(args))
    if rc in (pytest.ExitCode.USAGE_ERROR, pytest.ExitCode.NO_TESTS_COLLECTED):
        # a replay that cannot replay fails loudly: say why, after pytest's own error
        print(
            f"idemtest replay: {file} was saved by {test}, which pytest did not run here; "
            "run `idemtest replay` from the rootdir where the failure was saved, with the test still present",
            file=sys.stderr,
        )
        rc = int(pytest.ExitCode.USAGE_ERROR)
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
