"""The Airflow tutorial's employees pipeline (docs: tutorial/pipeline), ported to PostgreSQL sandboxes.

The tutorial's tasks: create a temp table, `get_data` COPYs the downloaded
employees CSV into it, `merge_data` runs `INSERT INTO employees SELECT … FROM
employees_temp ON CONFLICT ("Serial Number") DO UPDATE …`. Here the CSV files
land in `run.landing/hr.employees/` (one file per upstream batch) and every run
loads what has landed, as the tutorial reloads the whole file every day.

- `merge_employees` (correct): one transaction, one connection. A
  `CREATE TEMP TABLE … ON COMMIT DROP` (private to the session: two runs at once
  never share it, a killed run leaves nothing behind), `COPY … FROM STDIN` of
  every landed file, then `INSERT … SELECT DISTINCT ON (serial_number) … ORDER BY
  serial_number, updated_at DESC ON CONFLICT DO UPDATE … WHERE older`. No
  `except`: an error fails the task, and the orchestrator retries it.
- `merge_employees_tutorial` (buggy): the tutorial's shape and its
  error handling — `merge_data` wraps everything in `try: … except Exception:
  return 1`. apache/airflow PR 29158 fixed a SQL error in that query ("subquery
  in FROM must have an alias") that had left the employees table empty while
  every task showed success; the `except` stayed. Here the temp table is a
  real table `staging.employees_temp`, created at the start of the task and
  dropped at the end, each step committed on its own (as separate Airflow tasks
  are). A run killed after the CREATE leaves it behind (like the untruncated
  staging of dlt-hub/dlt#3023); from then on every `CREATE TABLE` fails with
  "relation already exists", the `except` turns that into a successful task,
  and nothing is loaded again — no retry, no alert, rows silently missing.
- `merge_employees_distinct_star` (buggy, PostgreSQL-specific): the tutorial's
  own query, `SELECT DISTINCT * … ON CONFLICT DO UPDATE`, without the `except`.
  `DISTINCT *` removes only identical rows; once an employee has two versions
  in the files PostgreSQL raises `CardinalityViolation` ("ON CONFLICT DO UPDATE
  command cannot affect row a second time") — DuckDB silently picks one. The
  load fails in an ordinary run: a LoadError, not an idempotency verdict.
"""

from __future__ import annotations

from pathlib import Path

COLUMNS = "serial_number, company_name, employee_markme, description, leave_days, updated_at"
COPY_CSV = "COPY {table} ({cols}) FROM STDIN WITH (FORMAT csv, HEADER true)"

UPSERT_FROM_TEMP = f"""
INSERT INTO analytics.employees AS e ({COLUMNS})
SELECT DISTINCT ON (serial_number) {COLUMNS}
FROM {{temp}}
ORDER BY serial_number, updated_at DESC
ON CONFLICT (serial_number) DO UPDATE
    SET company_name = EXCLUDED.company_name, employee_markme = EXCLUDED.employee_markme,
        description = EXCLUDED.description, leave_days = EXCLUDED.leave_days,
        updated_at = EXCLUDED.updated_at
    WHERE e.updated_at < EXCLUDED.updated_at
"""

# the tutorial's merge query (after PR 29158 added the alias), columns spelled out
TUTORIAL_MERGE = f"""
INSERT INTO analytics.employees ({COLUMNS})
SELECT *
FROM (
    SELECT DISTINCT *
    FROM {{temp}}
) t
ON CONFLICT (serial_number) DO UPDATE
    SET company_name = EXCLUDED.company_name, employee_markme = EXCLUDED.employee_markme,
        description = EXCLUDED.description, leave_days = EXCLUDED.leave_days,
        updated_at = EXCLUDED.updated_at
"""


def _landed_files(landing: Path) -> list[Path]:
    return sorted((landing / "hr.employees").glob("*.csv"))


def _copy_files(cur, table: str, files: list[Path]) -> None:  # type: ignore[no-untyped-def]
    for path in files:
        with open(path) as f:
            cur.copy_expert(COPY_CSV.format(table=table, cols=COLUMNS), f)


def merge_employees(dsn: str, landing: Path) -> None:
    """CORRECT: load every landed employees file — temp table + deduplicated
    upsert in one transaction, errors left to the orchestrator (the fix of the
    tutorial behind apache/airflow PR 29158)."""
    import psycopg2  # here, not at the top: importing the examples needs no driver

    conn = psycopg2.connect(dsn)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(
                "CREATE TEMP TABLE employees_temp (LIKE analytics.employees INCLUDING DEFAULTS) ON COMMIT DROP"
            )
            _copy_files(cur, "employees_temp", _landed_files(landing))
            cur.execute(UPSERT_FROM_TEMP.format(temp="employees_temp"))
    finally:
        conn.close()


def merge_employees_tutorial(dsn: str, landing: Path) -> int:
    """BUG (swallowed errors hide a broken load): the tutorial's error handling
    (apache/airflow PR 29158) — 0 on success, 1 on any error, and the task
    succeeds either way."""
    # here, not at the top (importing the examples needs no driver), and outside
    # the try: a missing driver is a setup problem, not something to swallow too
    import psycopg2

    try:
        conn = psycopg2.connect(dsn)
        cur = conn.cursor()
        # create_employees_temp_table
        cur.execute("CREATE TABLE staging.employees_temp (LIKE analytics.employees INCLUDING DEFAULTS)")
        conn.commit()
        # get_data
        _copy_files(cur, "staging.employees_temp", _landed_files(landing))
        conn.commit()
        # merge_data
        cur.execute(UPSERT_FROM_TEMP.format(temp="staging.employees_temp"))
        cur.execute("DROP TABLE staging.employees_temp")
        conn.commit()
        return 0
    except Exception:
        return 1


def merge_employees_distinct_star(dsn: str, landing: Path) -> None:
    """BUG (PostgreSQL-specific: an upsert whose source repeats a key): the
    tutorial's `SELECT DISTINCT *` merge (the query of apache/airflow PR 29158),
    in one transaction, errors not swallowed."""
    import psycopg2  # here, not at the top: importing the examples needs no driver

    conn = psycopg2.connect(dsn)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(
                "CREATE TEMP TABLE employees_temp (LIKE analytics.employees INCLUDING DEFAULTS) ON COMMIT DROP"
            )
            _copy_files(cur, "employees_temp", _landed_files(landing))
            cur.execute(TUTORIAL_MERGE.format(temp="employees_temp"))
    finally:
        conn.close()
