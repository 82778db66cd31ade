"""Every corpus file yields exactly the findings its `expect:` comments name."""

from __future__ import annotations

from pathlib import Path

import pytest

from idemtest.review import review_paths

from .conftest import CORPUS, corpus_files, expected

FILES = corpus_files()


def test_corpus_is_substantial() -> None:
    assert len(FILES) >= 25
    clean = [f for f in FILES if not expected(f)]
    risky = [f for f in FILES if expected(f)]
    assert len(clean) >= 8 and len(risky) >= 15
    rules = {r for f in FILES for _, r in expected(f)}
    from idemtest.review.model import RULES

    # Every rule is exercised by at least one labelled line.
    assert rules == set(RULES)


@pytest.mark.parametrize("path", FILES, ids=[f.relative_to(CORPUS).as_posix() for f in FILES])
def test_exact_findings(path: Path) -> None:
    result = review_paths([path])
    got = {(f.line, f.rule_id) for f in result.findings}
    assert got == expected(path)


def test_whole_corpus_in_one_run_matches_per_file() -> None:
    result = review_paths([CORPUS])
    got = {(f.file, f.line, f.rule_id) for f in result.findings}
    want = {("corpus/" + p.relative_to(CORPUS).as_posix(), line, rule)
            for p in FILES for line, rule in expected(p)}
    assert got == want
    # Only the Python syntax error and the unknown dialect are skipped whole.
    assert result.files_reviewed == len(FILES) - 2


def test_broken_files_are_skipped_with_reasons() -> None:
    result = review_paths([CORPUS / "broken"])
    reasons = {Path(s.file).name: s.reason for s in result.skipped}
    assert "syntax error" in reasons["syntax_error.py"]
    assert "unknown SQL dialect" in reasons["unknown_dialect.sql"]
    assert "unparseable" in reasons["garbled.sql"]
    assert result.findings == []


def test_suppressions_are_counted() -> None:
    result = review_paths([CORPUS / "sql" / "suppressed.sql"])
    assert result.findings == [] and result.suppressed == 2


def test_jobs_inventory() -> None:
    result = review_paths([CORPUS])
    by_name = {(j.kind, j.name): j for j in result.jobs}
    daily = by_name[("airflow", "daily_sales")]
    assert daily.cadence == "@daily"
    tasks = {t.name: t for t in daily.tasks}
    assert set(tasks) == {"clear_day", "load_day", "load_recent_events"}
    assert tasks["load_day"].outputs == ["analytics.sales_daily"]
    assert tasks["load_day"].inputs == ["raw.orders"]
    assert by_name[("airflow", "process-employees")].cadence == "0 0 * * *"
    assert by_name[("prefect", "hourly_orders")].cadence == "5 * * * *"
    dagster = [j for j in result.jobs if j.kind == "dagster"]
    assert any("0 2 * * *" in (j.cadence or "") for j in dagster)
    cron = [j for j in result.jobs if j.kind == "cron"]
    assert {j.cadence for j in cron} >= {"5 * * * *", "30 2 * * *", "@reboot"}
    assert {j.name for j in cron} >= {"load_events.py", "snapshot.py", "sync_orders.sh"}
