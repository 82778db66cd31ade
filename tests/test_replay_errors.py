"""A replay that cannot replay fails loudly, through `--idem-replay` and through
`idemtest replay`: a file of a test that is not collected, a missing, corrupt or
binary file (a usage error, never INTERNALERROR), a file of another idemtest
version (a warning naming both versions). Bad values inside a file:
tests/test_bad_inputs.py (REPLAYS)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import idemtest

ROOT = Path(idemtest.__file__).resolve().parents[1]

TESTS = """
import idemtest
from pipelines import spec, upsert

@idemtest.check(spec)
def test_upsert(run):
    upsert(run)
"""


def saved(p: pytest.Pytester, test: str | None = "test_pipe.py::test_upsert", version: str = idemtest.__version__, name: str = "saved.json") -> Path:
    """A failure file as idemtest writes it: one source row, the three windows in order."""
    from pipelines import spec  # type: ignore[import-not-found]  # the project fixture's module

    row = {"order_id": 1, "status": "new", "amount": {"$decimal": "1.50"}, "updated_at": {"$datetime": "2026-06-01T00:10:00"}}
    payload: dict[str, Any] = {
        "idemtest": version,
        "test": test,
        "spec": spec.fingerprint(),
        "db": "duckdb",
        "property": "P1",
        "scenario": {
            "data": {"src.orders": [{"arrival": "2026-06-01T00:10:00", "values": row}]},
            "steps": [{"window": i, "at": f"2026-06-01T0{i + 1}:00:00", "tag": "nominal"} for i in range(3)],
        },
    }
    path = p.path / name
    path.write_text(json.dumps(payload))
    return path


def cli(p: pytest.Pytester, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "idemtest.cli", "replay", *args, "-p", "no:cacheprovider"],
        cwd=p.path, capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": f"{p.path}{os.pathsep}{ROOT}"},
    )


def test_a_saved_scenario_replays(project: pytest.Pytester) -> None:
    # the files below are well formed: this one replays and passes (the load is correct)
    project.makepyfile(test_pipe=TESTS)
    result = project.runpytest("--idempotency", "--idem-replay", str(saved(project)))
    result.assert_outcomes(passed=1)
    result.stdout.re_match_lines([r"1 check\(s\) on duckdb: 0 systematic \+ 0 generated scenarios \+ 1 replayed.*"])


def test_a_file_of_a_test_that_is_not_collected_is_a_usage_error(project: pytest.Pytester) -> None:
    project.makepyfile(test_pipe=TESTS)
    path = saved(project, test="test_pipe.py::test_renamed")
    result = project.runpytest("--idempotency", "--idem-replay", str(path))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    out = result.stdout.str() + result.stderr.str()
    assert "was saved by test_pipe.py::test_renamed, which is not among the collected tests" in out
    assert "INTERNALERROR" not in out
    proc = cli(project, str(path))
    assert proc.returncode == pytest.ExitCode.USAGE_ERROR, proc.stdout + proc.stderr
    assert "was saved by test_pipe.py::test_renamed, which pytest did not run here" in proc.stderr
    assert "INTERNALERROR" not in proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, r"replay file '.*nowhere\.json' does not exist"),
        (b"{not json", r"replay file '.*nowhere\.json' is not JSON written by idemtest"),
        (b"\x00\x01\xff\xfe binary", r"replay file '.*nowhere\.json' is not JSON written by idemtest"),
        (b'{"test": "t.py::t"}', r"replay file '.*nowhere\.json' has no 'scenario'"),
    ],
    ids=["missing", "corrupt", "binary", "no scenario"],
)
def test_a_file_that_is_not_a_failure_is_a_usage_error(project: pytest.Pytester, content: bytes | None, message: str) -> None:
    import re

    project.makepyfile(test_pipe=TESTS)
    path = project.path / "nowhere.json"
    if content is not None:
        path.write_bytes(content)
    result = project.runpytest("--idempotency", "--idem-replay", str(path))
    out = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR, out
    assert re.search(rf"--idem-replay: {message}", out), out
    assert "INTERNALERROR" not in out and "Traceback" not in out
    proc = cli(project, str(path))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert re.search(rf"idemtest replay: {message}", proc.stderr), proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_file_of_another_version_warns_naming_both(project: pytest.Pytester) -> None:
    project.makepyfile(test_pipe=TESTS)
    path = saved(project, version="0.0.7")
    result = project.runpytest("--idempotency", "--idem-replay", str(path), "-W", "default")
    result.assert_outcomes(passed=1)
    out = result.stdout.str()
    assert "IdemtestWarning" in out and f"was saved by idemtest 0.0.7; this is idemtest {idemtest.__version__}" in out
    proc = cli(project, str(path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"warning: {path} was saved by idemtest 0.0.7; this is idemtest {idemtest.__version__}" in proc.stderr
    # the same version is no news
    quiet = project.runpytest("--idempotency", "--idem-replay", str(saved(project, name="same.json")))
    quiet.assert_outcomes(passed=1)
    assert "was saved by idemtest" not in quiet.stdout.str()


def test_a_bad_replay_in_the_ini_breaks_only_runs_that_check(project: pytest.Pytester) -> None:
    (project.path / "bad.json").write_bytes(b"\x00binary")
    project.makeini("[pytest]\nidem_replay = bad.json\n")
    project.makepyfile(test_pipe=TESTS)
    project.runpytest().assert_outcomes(skipped=1)
    checked = project.runpytest("--idempotency")
    assert checked.ret == pytest.ExitCode.USAGE_ERROR
    assert "is not JSON written by idemtest" in checked.stdout.str() + checked.stderr.str()
