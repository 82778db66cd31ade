"""The pytest plugin, driven through pytester as a user would drive it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = """
import idemtest
from pipelines import spec, upsert, append

@idemtest.check(spec)
def test_upsert(run):
    upsert(run)

@idemtest.check(spec)
def test_append(run):
    append(run)
"""


def saved_files(p: pytest.Pytester) -> list[Path]:
    d = p.path / ".idemtest" / "failures"
    return sorted(d.glob("*.json")) if d.exists() else []


def test_checks_are_skipped_without_the_option(project: pytest.Pytester) -> None:
    project.makepyfile(test_pipe=TESTS)
    result = project.runpytest("-rs")
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(["*run only with `pytest --idempotency`*"])


def test_correct_passes_and_buggy_fails_with_minimal_scenario(project: pytest.Pytester) -> None:
    project.makepyfile(test_pipe=TESTS)
    result = project.runpytest("--idempotency", "--idem-examples", "60")
    result.assert_outcomes(passed=1, failed=1)
    out = result.stdout.str()
    assert "test_pipe.py::test_append" in out
    assert "P2 declared keys stay unique — VIOLATED" in out or "P1 same outcome as one clean run — VIOLATED" in out
    assert "Minimal scenario" in out
    assert "Replay: pytest --idempotency --idem-replay" in out
    # the report is the message, not a traceback through idemtest's internals
    assert "search.py" not in out and "execute.py" not in out
    files = saved_files(project)
    assert len(files) == 1
    payload = json.loads(files[0].read_text())
    assert payload["test"] == "test_pipe.py::test_append"
    assert payload["property"] in ("P1", "P2")
    assert payload["scenario"]["data"]["src.orders"] and payload["scenario"]["steps"]
    # the terminal summary counts what was exercised
    result.stdout.re_match_lines([r"2 check\(s\) on duckdb: [1-9]\d* systematic \+ [1-9]\d* generated scenarios, \d+ runs, [1-9]\d* crashes injected.*"])


def test_replay_reproduces_the_same_diff(project: pytest.Pytester) -> None:
    project.makepyfile(test_pipe=TESTS)
    first = project.runpytest("--idempotency", "--idem-examples", "60")
    first.assert_outcomes(passed=1, failed=1)
    (saved,) = saved_files(project)
    diff_lines = [ln for ln in first.stdout.lines if ln.strip().startswith(("order_id=", "duplicate keys", "missing", "extra", "changed"))]
    assert diff_lines
    again = project.runpytest("--idempotency", "--idem-replay", str(saved))
    # only the test that saved the file runs
    again.assert_outcomes(failed=1, deselected=1)
    replay_lines = [ln for ln in again.stdout.lines if ln.strip().startswith(("order_id=", "duplicate keys", "missing", "extra", "changed"))]
    assert replay_lines == diff_lines


def test_replay_of_a_fixed_pipeline_passes(project: pytest.Pytester) -> None:
    project.makepyfile(test_pipe=TESTS)
    project.runpytest("--idempotency", "--idem-examples", "60").assert_outcomes(passed=1, failed=1)
    (saved,) = saved_files(project)
    # the engineer fixes the pipeline: the saved scenario now passes
    project.makepyfile(test_pipe=TESTS.replace("    append(run)", "    upsert(run)"))
    project.runpytest("--idempotency", "--idem-replay", str(saved)).assert_outcomes(passed=1, deselected=1)


def test_idemtest_replay_command(project: pytest.Pytester) -> None:
    project.makepyfile(test_pipe=TESTS)
    project.runpytest("--idempotency", "--idem-examples", "60").assert_outcomes(passed=1, failed=1)
    (saved,) = saved_files(project)
    proc = subprocess.run(
        [sys.executable, "-m", "idemtest.cli", "replay", str(saved), "-p", "no:cacheprovider"],
        cwd=project.path, capture_output=True, text=True, timeout=300,
        env={**__import__("os").environ, "PYTHONPATH": str(project.path)},
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "VIOLATED" in proc.stdout
    assert "1 failed" in proc.stdout


def test_fixture_form_and_ini_options(project: pytest.Pytester) -> None:
    project.makeini("[pytest]\nidempotency = true\nidem_examples = 30\n")
    project.makepyfile(
        test_fx="""
        from pipelines import spec, upsert, append

        def test_ok(idempotency):
            idempotency.check(spec, upsert)
            # the systematic pass, then what is left of idem_examples (at least 10) generated
            s = idempotency.stats
            assert s.systematic > 0 and s.generated >= 10 and s.scenarios == s.systematic + s.generated

        def test_bad(idempotency):
            idempotency.check(spec, append)
        """
    )
    result = project.runpytest()
    result.assert_outcomes(passed=1, failed=1)


def test_hypothesis_seed_is_honoured(project: pytest.Pytester) -> None:
    project.makepyfile(test_pipe=TESTS)
    contents = []
    for _ in range(2):
        for f in saved_files(project):
            f.unlink()
        # no example database, so only the seed makes the runs alike
        result = project.runpytest("--idempotency", "--idem-examples", "40", "--hypothesis-seed", "12345", "-p", "no:cacheprovider", "-k", "append")
        result.assert_outcomes(failed=1, deselected=1)
        (saved,) = saved_files(project)
        contents.append(json.loads(saved.read_text())["scenario"])
        import shutil

        shutil.rmtree(project.path / ".hypothesis", ignore_errors=True)
    assert contents[0] == contents[1]


def test_example_database_replays_the_failure_first(project: pytest.Pytester) -> None:
    project.makepyfile(test_pipe=TESTS)
    project.runpytest("--idempotency", "--idem-examples", "60", "-k", "append").assert_outcomes(failed=1, deselected=1)
    (first,) = saved_files(project)
    first_scenario = json.loads(first.read_text())["scenario"]
    first.unlink()
    second = project.runpytest("--idempotency", "--idem-examples", "60", "-k", "append")
    second.assert_outcomes(failed=1, deselected=1)
    (again,) = saved_files(project)
    assert json.loads(again.read_text())["scenario"] == first_scenario


def test_help_lists_the_options(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["*--idempotency*", "*--idem-examples*", "*--idem-db*", "*--idem-replay*"])


def test_unknown_db_is_a_clear_error(project: pytest.Pytester) -> None:
    project.makepyfile(test_pipe=TESTS)
    result = project.runpytest("--idempotency", "--idem-db", "oracle://scott:tiger@db/x", "-k", "upsert")
    # refused before any test runs, as any other bad command-line value is
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    out = result.stdout.str() + result.stderr.str()
    assert "is not a known sandbox" in out and "postgresql://user@host:port/dbname" in out
    assert "tiger" not in out


def test_check_of_another_dialect_is_skipped_with_the_option_to_use(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_pg="""
        import dataclasses, idemtest
        from pipelines import spec, upsert

        @idemtest.check(dataclasses.replace(spec, dialect="postgres"))
        def test_pg_only(run):
            upsert(run)
        """
    )
    result = project.runpytest("--idempotency", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*declares dialect='postgres' and the sandbox is duckdb; run it with --idem-db postgresql://*"])


SUMMARY = r"{n} check\(s\) on duckdb: [1-9]\d* systematic \+ \d+ generated scenarios, \d+ runs, .*"


def test_summary_counts_both_phases_and_prints_coverage_per_check_under_v(project: pytest.Pytester) -> None:
    project.makepyfile(test_pipe=TESTS)
    result = project.runpytest("--idempotency", "--idem-examples", "20", "-v", "-k", "upsert")
    result.assert_outcomes(passed=1, deselected=1)
    result.stdout.re_match_lines([SUMMARY.format(n=1), r"single-fault pass: \d+ crash points played \(\d+ crashed, \d+ retried\); windows \d+ duplicated, .*"])
    # one compact line per check
    result.stdout.re_match_lines([r"  test_pipe.py::test_upsert: \d+ systematic \+ \d+ generated; \d+/\d+ single-fault scenarios; crash points .*"])
    quiet = project.runpytest("--idempotency", "--idem-examples", "20", "-k", "append")
    quiet.assert_outcomes(failed=1, deselected=1)
    quiet.stdout.re_match_lines([SUMMARY.format(n=1)])
    assert not [ln for ln in quiet.stdout.lines if "single-fault scenarios;" in ln]


@pytest.mark.parametrize(
    ("ini", "message"),
    [
        ("idem_examples = many", "idem_examples='many' is not a whole number"),
        ("idem_examples = 0", "give at least 1 scenario per check"),
        ("idem_db = oracle://x", "is not a known sandbox"),
        ("idem_replay = missing.json", "does not exist"),
        ("idem_shrink_seconds = soon", "is not a number of seconds"),
    ],
)
def test_a_bad_ini_value_breaks_only_runs_that_check(project: pytest.Pytester, ini: str, message: str) -> None:
    project.makeini(f"[pytest]\n{ini}\n")
    project.makepyfile(test_pipe=TESTS)
    plain = project.runpytest()
    plain.assert_outcomes(skipped=2)  # an ordinary pytest run does not read idemtest's options
    checked = project.runpytest("--idempotency")
    assert checked.ret == pytest.ExitCode.USAGE_ERROR
    assert message in checked.stdout.str() + checked.stderr.str()
    assert "INTERNALERROR" not in checked.stdout.str() + checked.stderr.str()


def test_a_load_needing_a_missing_extra_is_skipped_with_the_pip_command(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_extra="""
        import idemtest
        from pipelines import spec, upsert

        @idemtest.check(spec)
        def test_needs_a_driver(run):
            import psycopg2_not_installed_here as psycopg2  # stands for a driver of an extra
            upsert(run)

        @idemtest.check(spec)
        def test_needs_sqlalchemy(run):
            raise ModuleNotFoundError("No module named 'sqlalchemy'", name="sqlalchemy")
        """
    )
    result = project.runpytest("--idempotency", "-rs")
    # an unknown module is the load's own bug; a module an idemtest extra installs is a skip
    result.assert_outcomes(failed=1, skipped=1)
    result.stdout.re_match_lines([r".*SKIPPED.*pip install 'idemtest\[sqlalchemy\]'.*"])


def test_summary_under_xdist_adds_up_the_workers(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("xdist")
    import idemtest

    # the subprocess must load this checkout's idemtest, whatever is installed
    monkeypatch.setenv("PYTHONPATH", str(Path(idemtest.__file__).resolve().parents[1]))
    project.makepyfile(test_pipe=TESTS.replace("    append(run)", "    upsert(run)"))
    result = project.runpytest_subprocess("--idempotency", "--idem-examples", "20", "-n", "2", "-v", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    # both workers' checks are counted in the controller's summary
    result.stdout.re_match_lines([SUMMARY.format(n=2)])
    assert len([ln for ln in result.stdout.lines if "single-fault scenarios;" in ln]) == 2
