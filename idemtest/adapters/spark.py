"""Spark jobs as idemtest checks (`idemtest[spark]`).

    import idemtest
    from idemtest import Source, Target, daily

    def job(spark, start, end): ...          # the production job, unchanged

    test_daily_sales = idemtest.spark.check(
        job,
        sources=[Source("events", columns={...}, key="event_id", event_time="ts")],
        targets=[Target("daily_sales", key=["day", "store"])],
        schedule=daily("2026-06-01", periods=3),
    )

Every run calls `job(spark, window.start, window.end)` with a SparkSession whose
current database is the sandbox's: `spark.table("events")` reads the generated
source, `saveAsTable` / `insertInto` / SQL write the sandbox's tables. A job with a
`warehouse` parameter gets the sandbox's folder in it (Delta tables written by path,
`write_deltalake(f"{warehouse}/sales", ...)`), as production passes its lake root.

The session is the process-wide local one (idemtest.sandbox.spark): the check runs on
it whatever `--idem-db` says, as a Spark job runs on nothing else. Runs never
overlap (`concurrency="none"`): two jobs at once are two Spark applications.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._errors import ConfigurationError, SpecError
from ..spec import ALL_PERTURBATIONS, Oracle, Schedule, Source, Spec, Target, daily
from ._shared import as_user_test, caller_dir, skip_unless_enabled

if TYPE_CHECKING:
    from ..context import RunContext
    from ..sandbox.base import Backend

#: a Spark run costs ~0.5-1 s: fewer scenarios than a plain check (`examples=` or
#: --idem-examples raise it); the single-fault pass is thinned evenly to this many
DEFAULT_EXAMPLES = 6
DEFAULT_SYSTEMATIC_MAX = 8

_backend: Backend | None = None


def backend(kind: str = "spark") -> Backend:
    """The process's Spark backend (one session for every Spark check)."""
    global _backend
    if _backend is None or _backend.name != kind:
        from ..sandbox.spark import SparkBackend

        _backend = SparkBackend(kind)
    return _backend


class JobError(ConfigurationError):
    """The job did not write anything: the check would pass whatever it does."""


def make_load(job: Callable[..., Any]) -> Callable[[RunContext], Any]:
    try:
        params = inspect.signature(job).parameters
    except (TypeError, ValueError):
        params = {}  # type: ignore[assignment]
    wants_warehouse = "warehouse" in params
    wrote: dict[int, bool] = {}  # per sandbox of a clean run: did any run write?

    def spark_job(run: RunContext) -> None:
        sandbox = run._sandbox
        kwargs = {"warehouse": str(sandbox.warehouse)} if wants_warehouse else {}  # type: ignore[attr-defined]
        before = run._ctl.count if run._ctl is not None else 0
        job(run.spark, run.window.start, run.window.end, **kwargs)
        if not run.clean or run._ctl is None:
            return
        key = id(sandbox)
        wrote[key] = wrote.get(key, False) or run._ctl.count > before
        last = run.window.index == run.spec.all_windows[-1].index
        if last and not wrote.pop(key) and any(getattr(sandbox, "source_rows", {}).values()):
            raise JobError(
                f"the job {getattr(job, '__qualname__', job)!r} wrote nothing in any window of the clean run, though its sources had rows (no saveAsTable, insertInto, "
                "save, SQL INSERT/MERGE, or Delta write reached Spark), so idemtest has nothing to compare; make it write its "
                "output to the session it is given (spark.table(...) reads the sandbox's sources, saveAsTable/insertInto write "
                "its tables), or give Delta paths under its `warehouse` parameter"
            )

    spark_job.__qualname__ = getattr(job, "__qualname__", "job")
    return spark_job


def check(
    job: Callable[..., Any],
    *,
    sources: Iterable[Source],
    targets: Iterable[Target],
    schedule: Schedule | None = None,
    setup: str | None = None,
    max_lateness: timedelta | str | float = timedelta(0),
    oracle: Oracle = "all-arrived",
    retries: int = 2,
    retry_delay: timedelta | str | float = timedelta(minutes=5),
    timeout: timedelta | str | float = timedelta(seconds=120),
    exercise: Iterable[str] | None = None,
    examples: int | None = None,
    db: str = "spark",
) -> Callable[..., None]:
    """A pytest test checking the Spark job `job(spark, start, end)`: assign it to a
    `test_` name. `sources`: the tables it reads (idemtest creates them as Parquet
    tables in the sandbox database and writes the generated rows); `targets`: the
    tables it writes (catalog tables, or Delta tables at `<warehouse>/<name>`);
    `setup`: Spark SQL run in every fresh sandbox (e.g. the target's
    `CREATE TABLE ... USING parquet PARTITIONED BY (day)`). `db`: "spark" or
    "spark+delta" (Delta on Spark; needs the delta-spark jars, see docs/spark.md)."""
    if not callable(job):
        raise SpecError(f"idemtest.spark.check(job=...) takes the job function `def job(spark, start, end)`, got {job!r}")
    if db not in ("spark", "spark+delta"):
        raise SpecError(f"db={db!r}; use 'spark' (Parquet/Hive tables, Delta through delta-rs) or 'spark+delta' (Delta on Spark)")
    chosen = frozenset(ALL_PERTURBATIONS - {"concurrent"} if exercise is None else ([exercise] if isinstance(exercise, str) else exercise))
    if "concurrent" in chosen:
        raise SpecError("exercise= includes 'concurrent': a Spark check runs one job at a time (two at once are two Spark applications); leave it out")
    target_list = [t if t.query is not None or t.file is not None else _created_by_load(t) for t in targets]
    spec = Spec(
        sources=list(sources),
        targets=target_list,
        schedule=schedule if schedule is not None else daily("2026-06-01", periods=3),
        setup=setup,
        max_lateness=max_lateness,
        oracle=oracle,
        retries=retries,
        retry_delay=retry_delay,
        timeout=timeout,
        exercise=chosen,
        concurrency="none",
        name=f"spark_{getattr(job, '__name__', 'job')}",
    )
    load = make_load(job)
    base = caller_dir()

    def test(idempotency: Any) -> None:
        skip_unless_enabled(idempotency)
        run_check(idempotency, spec, load, examples=examples, base_dir=base, db=db)

    name = getattr(job, "__name__", "job")
    return as_user_test(test, name=f"test_spark_{name}", doc=f"idemtest: Spark job {name!r}", attr="idemtest_spark", definition=(spec, load))


def _created_by_load(t: Target) -> Target:
    from dataclasses import replace

    return replace(t, created_by_load=True)


def run_check(idempotency: Any, spec: Spec, load: Callable[[RunContext], Any], *, examples: int | None, base_dir: Path | None, db: str) -> None:
    """`idempotency.check` on the Spark backend (the session's own when --idem-db is spark)."""
    s = idempotency._session
    chosen = getattr(s, "_choice", None)
    be = s.backend if chosen is not None and chosen.kind == db else backend(db)
    idempotency.check(spec, load, examples=examples or DEFAULT_EXAMPLES, base_dir=base_dir, systematic_max=DEFAULT_SYSTEMATIC_MAX, backend=be)


