"""Findings, rules and the result of a review: the data every other module shares."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Severity(enum.IntEnum):
    """Ordered so ``--fail-on`` can compare with ``>=``."""

    LOW = 1
    MEDIUM = 2
    HIGH = 3

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class Rule:
    id: str
    name: str
    category: str
    severity: Severity
    issue: str
    risk: str
    fix: str
    # The `pytest --idempotency` scenario that demonstrates the bug, when one exists.
    scenario: str | None = None

    @property
    def fix_text(self) -> str:
        if self.scenario is None:
            return self.fix
        return f"{self.fix} Demonstrate with `pytest --idempotency`: {self.scenario}."


_RETRY = "a crash after statement k then retry (P1/P2)"
_LATE = "a late-arriving row (P1)"
_BACKFILL = "a backfill of an earlier window (P1)"
_CONCURRENT = "two concurrent runs of one partition (P1/P2)"
_GAP = "crash between DELETE and INSERT (P3)"
_DUPLICATE = "a duplicate run of one window (P1/P2)"

_RULE_LIST = [
    # 1xx: orchestration
    Rule("IDM101", "catchup-default", "orchestration", Severity.MEDIUM,
         "DAG leaves `catchup` at its default",
         "the default differs between Airflow versions and config; turning the DAG on can "
         "launch one run per missed interval, all loading at once",
         "Set `catchup=` explicitly on the DAG (False unless the loads are proven safe to backfill).",
         _BACKFILL),
    Rule("IDM102", "no-max-active-runs", "orchestration", Severity.MEDIUM,
         "no limit on concurrent runs (`max_active_runs` / concurrency limit)",
         "a scheduled run and a retry, manual trigger or catch-up run can write the same "
         "partition at the same time",
         "Set `max_active_runs=1` on the DAG (Prefect: `concurrency_limit=1` on the deployment).",
         _CONCURRENT),
    Rule("IDM103", "retries-unbounded-or-missing", "orchestration", Severity.LOW,
         "`retries` / `retry_delay` missing or unbounded",
         "no retries turns a transient error into a failed day; retries without a delay hammer "
         "a failing source; unbounded retries re-run a non-idempotent load over and over",
         "Set a small bounded `retries` (1-5) with a `retry_delay` (Prefect: `retry_delay_seconds`) "
         "in default_args or on the task.",
         _RETRY),
    Rule("IDM104", "depends-on-past", "orchestration", Severity.LOW,
         "`depends_on_past=True` applied to every task",
         "one failed run blocks every later run, and backfills stall silently",
         "Remove `depends_on_past` from default_args; set it only on tasks that really read "
         "their own previous output.",
         None),
    Rule("IDM105", "dynamic-start-date", "orchestration", Severity.HIGH,
         "`start_date` computed from the wall clock",
         "the start moves at every parse, so intervals shift, runs are skipped or never "
         "scheduled, and a backfill has no stable range",
         "Use a fixed date: `start_date=pendulum.datetime(2024, 1, 1, tz=\"UTC\")`.",
         _BACKFILL),
    Rule("IDM106", "cron-overlap", "orchestration", Severity.MEDIUM,
         "cron entry has no overlap guard",
         "cron starts the next run even if the previous one is still loading; both write "
         "the same partition",
         "Wrap the command in `flock -n /var/lock/JOB.lock ...` (or run it from an orchestrator "
         "with max_active_runs=1).",
         _CONCURRENT),
    Rule("IDM107", "dagster-partition-no-overwrite", "orchestration", Severity.HIGH,
         "partitioned Dagster asset stored by a database IO manager without `partition_expr`",
         "the IO manager cannot delete the partition's old slice, so re-materialising a "
         "partition writes its rows again (dagster-io/dagster#21278)",
         "Add `metadata={\"partition_expr\": \"<partition column>\"}` to the asset and use an IO "
         "manager that replaces the slice (delete + insert in one transaction).",
         _DUPLICATE),
    Rule("IDM108", "catchup-in-default-args", "orchestration", Severity.MEDIUM,
         "`catchup` set in `default_args`, where Airflow ignores it",
         "default_args are passed to tasks, not to the DAG: the DAG keeps the default catch-up "
         "and can launch one run per missed interval when it is turned on",
         "Move `catchup=` out of default_args onto the DAG itself: `DAG(..., catchup=False)`.",
         _BACKFILL),
    # 2xx: loads
    Rule("IDM201", "bare-append", "load", Severity.HIGH,
         "bare `INSERT`/`COPY` into a target of a retried task",
         "a retry, re-run or duplicate trigger appends the same rows again",
         "Make the write keyed: `MERGE`/`INSERT ... ON CONFLICT (key) DO UPDATE`, or delete the "
         "window and insert it in one transaction.",
         _RETRY),
    Rule("IDM202", "to-sql-append", "load", Severity.HIGH,
         "`DataFrame.to_sql(if_exists=\"append\")` without a key-based dedupe",
         "every retry or re-run appends the frame again",
         "Write to a staging table (`if_exists=\"replace\"`) and `MERGE`/upsert into the target on "
         "its key, or delete the window and append in one transaction.",
         _RETRY),
    Rule("IDM203", "to-sql-replace-incremental", "load", Severity.HIGH,
         "`to_sql(if_exists=\"replace\")` in an incremental job",
         "each run drops the table and keeps only its own increment; history is lost and the "
         "table is missing while it is rebuilt",
         "Upsert the increment into the target on its key (staging table + `MERGE`), or "
         "load the full history when replacing.",
         _BACKFILL),
    Rule("IDM204", "on-conflict-do-nothing", "load", Severity.MEDIUM,
         "`INSERT ... ON CONFLICT DO NOTHING` on rows that get updated",
         "a newer version of an existing key is silently dropped; the target keeps stale values",
         "Use `ON CONFLICT (key) DO UPDATE SET ... WHERE target.updated_at < EXCLUDED.updated_at`.",
         _LATE),
    Rule("IDM205", "merge-extra-key", "load", Severity.MEDIUM,
         "`MERGE` keyed on more than the business key",
         "a changed value in the extra column (updated_at, status, hash) makes the row "
         "'not matched', so a second row is inserted for the same key",
         "Match on the business key only and put version/time conditions in "
         "`WHEN MATCHED AND s.updated_at > t.updated_at`.",
         _LATE),
    Rule("IDM206", "swallowed-load-error", "load", Severity.HIGH,
         "exception swallowed around a load (`except Exception:` that logs, passes or returns)",
         "a load that fails half-way is reported as a success: the orchestrator neither retries "
         "it nor alerts, and the window stays partial or missing",
         "Let the exception propagate (re-raise after logging) so the run fails and is retried; "
         "catch only the specific errors the load can really recover from.",
         _RETRY),
    # 3xx: destructive steps
    Rule("IDM301", "delete-before-replacement", "destructive", Severity.HIGH,
         "`DELETE`/`TRUNCATE`/`DROP` of live data committed before its replacement is loaded",
         "a crash between the two steps leaves the target empty or missing the window "
         "until someone re-runs it; readers see the gap",
         "Put the delete and the load in one transaction, or load a new table and swap it in "
         "(`ALTER TABLE ... RENAME`, `CREATE OR REPLACE`, `INSERT OVERWRITE`).",
         _GAP),
    # 4xx: incremental logic
    Rule("IDM401", "wall-clock-watermark", "incremental", Severity.HIGH,
         "watermark or cursor taken from the wall clock",
         "rows whose event time is older than the run time but that arrive late are never "
         "loaded; a delayed or retried run skips a whole slice",
         "Take the watermark from the data: `MAX(event_time)` of what was loaded, or the "
         "run's logical interval (`data_interval_start`).",
         _LATE),
    Rule("IDM402", "no-lookback", "incremental", Severity.MEDIUM,
         "incremental cursor has no lookback",
         "rows committed late with an event time at or before the saved cursor are skipped "
         "for ever",
         "Subtract a lookback from the cursor (`>= watermark - INTERVAL '2 hours'`) and make the "
         "load an upsert so the overlap is harmless.",
         _LATE),
    Rule("IDM403", "strict-cursor", "incremental", Severity.MEDIUM,
         "strict `>` on the cursor",
         "rows that share the cursor's last value but are committed after the run are dropped "
         "(airbytehq/airbyte#14732)",
         "Use `>=` (with a lookback) and an upsert on the key so re-read rows are not duplicated.",
         _LATE),
    Rule("IDM404", "watermark-before-load", "incremental", Severity.HIGH,
         "watermark saved before the load has committed",
         "a crash after saving the watermark and before the load commits loses that window "
         "for ever (dlt-hub/dlt#4052 is the mirror case)",
         "Save the watermark after the load, in the same transaction as the load.",
         _RETRY),
    Rule("IDM405", "offset-commit-before-write", "incremental", Severity.HIGH,
         "consumer offsets committed before the writes they cover",
         "a crash after the commit and before the write loses those messages for good: the "
         "consumer resumes after them (auto-commit does the same on its timer)",
         "Commit offsets after the write has committed (`enable_auto_commit=False`, then "
         "`consumer.commit()` after the load), or store them in the target in the same "
         "transaction; make the write an upsert so a replay after a crash is harmless.",
         _RETRY),
    # 5xx: backfill
    Rule("IDM501", "run-time-window", "backfill", Severity.MEDIUM,
         "window derived from the run time, with no parameter",
         "there is no way to reprocess a past date range; a late or retried run loads the "
         "wrong day",
         "Take the window from a parameter (`{{ data_interval_start }}`, a `day` argument, a "
         "partition key) and default it to the scheduled interval.",
         _BACKFILL),
    Rule("IDM502", "backfill-deletes-live", "backfill", Severity.HIGH,
         "backfill deletes live partitions before the replacement exists",
         "a failure mid-backfill leaves the reprocessed range empty in production",
         "Build each partition's replacement first and swap it in atomically (one transaction "
         "per partition, or `INSERT OVERWRITE` / partition exchange).",
         _GAP),
    Rule("IDM503", "wall-clock-in-task-sql", "backfill", Severity.MEDIUM,
         "task SQL takes its window from `CURRENT_DATE`/`now()` though the run's logical date "
         "is available",
         "a retried, late or backfilled run loads the day it runs on instead of the interval it "
         "was scheduled for: the backfill reloads today and the missed day stays missing",
         "Use the run's interval: `{{ data_interval_start }}` / `{{ ds }}` in templated SQL, or "
         "the `data_interval_start` argument in Python.",
         _BACKFILL),
    # 6xx: dbt
    Rule("IDM601", "dbt-incremental-no-key", "dbt", Severity.HIGH,
         "dbt incremental model without `unique_key`",
         "each run appends its rows; re-runs and the lookback overlap produce duplicates",
         "Add `unique_key=` (and `incremental_strategy='merge'` or `'delete+insert'`) to the "
         "model's config.",
         _DUPLICATE),
    # 7xx: Spark / Delta Lake writes (detected in spark_rules.py)
    Rule("IDM701", "spark-static-partition-overwrite", "spark", Severity.HIGH,
         "Spark overwrite of a partitioned output under the static `partitionOverwriteMode`",
         "with the default static mode (and always with `saveAsTable`) an overwrite deletes every "
         "partition of the output, not only those the run writes: a backfill or re-run of one "
         "day wipes all the others",
         "Set `spark.sql.sources.partitionOverwriteMode=dynamic` and write with "
         "`insertInto(table, overwrite=True)` (or `.option(\"partitionOverwriteMode\", \"dynamic\")`), "
         "or use Delta `replaceWhere` of the window.",
         _BACKFILL),
    Rule("IDM702", "spark-append", "spark", Severity.HIGH,
         "Spark write appends (`insertInto` without `overwrite=True`, `mode(\"append\")`)",
         "a retried or repeated run appends its rows again",
         "Overwrite the run's partitions (dynamic partition overwrite), or MERGE on the key.",
         _DUPLICATE),
    Rule("IDM703", "delta-merge-source-not-unique", "spark", Severity.MEDIUM,
         "Delta MERGE from a source that is never deduplicated on the merge key",
         "two source rows for one key insert it twice when new, and make Delta refuse the MERGE "
         "(\"multiple source rows matched\") once it exists",
         "Keep the latest row per key before merging (`row_number()` over the key, or "
         "`dropDuplicates([key])`).",
         _DUPLICATE),
    Rule("IDM704", "replace-where-wall-clock", "spark", Severity.HIGH,
         "Delta `replaceWhere` / predicate overwrite computed from the wall clock",
         "a late, retried or backfilled run replaces the day it runs on, not the window it was "
         "scheduled for",
         "Build the predicate from the window the scheduler passes (start/end, `data_interval_start`).",
         _BACKFILL),
]

RULES: dict[str, Rule] = {r.id: r for r in _RULE_LIST}


@dataclass(frozen=True, order=True)
class Finding:
    file: str
    line: int
    rule_id: str
    detail: str = ""

    @property
    def rule(self) -> Rule:
        return RULES[self.rule_id]

    @property
    def severity(self) -> Severity:
        return self.rule.severity

    @property
    def issue(self) -> str:
        return f"{self.rule.issue}: {self.detail}" if self.detail else self.rule.issue


@dataclass(frozen=True, order=True)
class Skipped:
    file: str
    reason: str
    line: int | None = None


@dataclass
class Task:
    """One unit an orchestrator runs: an Airflow task, a Dagster asset, a Prefect task."""

    name: str
    line: int
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)


@dataclass
class Job:
    """A scheduled pipeline found in the code: where it is, how often, what it touches."""

    file: str
    line: int
    kind: str  # airflow | dagster | prefect | cron
    name: str
    cadence: str | None
    tasks: list[Task] = field(default_factory=list)


@dataclass
class ReviewOptions:
    """What to review and report: `--exclude`, `--select`, `--ignore`, `--include-tests`,
    or the same keys in `[tool.idemtest.review]` of pyproject.toml."""

    exclude: list[str] = field(default_factory=list)  # globs on paths below the given roots
    select: list[str] | None = None  # rule ids or id prefixes (IDM1, IDM20); None = all
    ignore: list[str] = field(default_factory=list)
    include_tests: bool = False  # tests/, test_*.py, *_test.py, conftest.py

    def wants(self, rule_id: str) -> bool:
        if any(rule_id.startswith(p) for p in self.ignore):
            return False
        return self.select is None or any(rule_id.startswith(p) for p in self.select)


@dataclass
class ReviewResult:
    findings: list[Finding] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    jobs: list[Job] = field(default_factory=list)
    files_reviewed: int = 0
    suppressed: int = 0
    # files left out inside a folder: (display path, why), e.g. test code or an --exclude glob
    left_out: list[Skipped] = field(default_factory=list)
    # display path -> absolute path, for reports that need a location on disk (SARIF)
    paths: dict[str, str] = field(default_factory=dict)
    # files a bug of the reviewer left unreviewed (the reason names the exception)
    internal_errors: list[Skipped] = field(default_factory=list)

    @property
    def excluded(self) -> int:
        return len(self.left_out)

    def at_or_above(self, severity: Severity) -> list[Finding]:
        return [f for f in self.findings if f.severity >= severity]
