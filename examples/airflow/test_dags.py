"""Airflow DAGs in `dags/`, checked as Airflow runs them.

Each check loads the DAG file, takes its data intervals from its schedule and its
retries, retry delay, catchup and max_active_runs from the DAG, and runs the
tasks for real (`task.execute` after Airflow renders their templates) against a
PostgreSQL sandbox; every `conn_id` points at it. Run with

    pytest --idempotency --idem-db postgresql://postgres@127.0.0.1:5432/postgres examples/airflow -rxX

On the default DuckDB sandbox they skip (naming --idem-db); without Airflow they
skip with `pip install 'idemtest[airflow]'`. Buggy DAGs are strict xfails.
"""

from __future__ import annotations

import pytest

import idemtest
from idemtest import Target

from ..sources import EMPLOYEES_CSV, EVENTS


def caught(bug: str):
    return pytest.mark.xfail(strict=True, raises=idemtest.IdempotencyViolation, reason=bug)


def employees_dir(run):
    return str(run.landing / "hr.employees")


EMPLOYEES = [Target("employees", key="serial_number", created_by_load=True)]
LOADED_EVENTS = [Target("analytics.loaded_events", key="event_id")]

# correct: the tutorial with errors raised, a truncate+load staging step, a newest-wins merge, max_active_runs=1
test_tutorial_fixed = idemtest.airflow.check(
    dag="dags/tutorial_fixed.py", sources=[EMPLOYEES_CSV], targets=EMPLOYEES, variables={"employees_dir": employees_dir}
)

# 14: the tutorial as published: merge_data's `except Exception: return 1` hides its failures
test_tutorial_original = caught(
    "14 swallowed errors: the tutorial's merge_data returns 1 on any error, so a failing merge is a successful task (apache/airflow PR 29158)"
)(idemtest.airflow.check(dag="dags/tutorial_original.py", sources=[EMPLOYEES_CSV], targets=EMPLOYEES, variables={"employees_dir": employees_dir}))

# correct: delete+insert of the data interval in one transaction
test_events_interval = idemtest.airflow.check(dag="dags/events_interval.py", sources=[EVENTS], targets=LOADED_EVENTS, setup="schema.sql")

# 3: watermark in an Airflow Variable, saved before the load
test_events_watermark = caught("3 watermark saved before the load: a retried extract starts past the rows it never loaded")(
    idemtest.airflow.check(dag="dags/events_watermark.py", sources=[EVENTS], targets=LOADED_EVENTS, setup="schema.sql")
)
