"""Spark sandboxes (`--idem-db spark`): one local-mode SparkSession per process,
one database and warehouse folder per sandbox.

Starting Spark costs 5-10 s and every write is a small Spark job (~0.4 s), so:

- the JVM and its SparkSession start once per process and are shared; each sandbox
  is a `newSession()` of it (its own current database, SQL conf and temp views:
  `partitionOverwriteMode` set by one job never leaks into another sandbox) whose
  database lives in the sandbox's own folder, dropped with it;
- source tables are Parquet tables whose files idemtest writes with pyarrow
  (~30 ms, against ~0.4 s for a Spark write);
- only writes are statement boundaries (lazy DataFrames cost nothing until written).

Write boundaries, as on a real cluster:

- a Parquet / Hive-style write (`DataFrameWriter.save/saveAsTable/insertInto/parquet/...`,
  SQL `INSERT`) is not atomic: it has two boundaries, the write and its job commit.
  Crashing before the job commit leaves what Spark did before running the job (a
  static overwrite already deleted the old partitions; an append or a dynamic
  overwrite changed nothing); crashing after it leaves half of the written
  partitions committed. Crashing after the write leaves it complete.
- a Delta commit (delta-rs `write_deltalake`, `DeltaTable.merge(...).execute()`,
  `delete`, `update`; Delta on Spark with `spark+delta`) is atomic: before or after.

Delta on Spark needs the delta-spark jars, which `pip install delta-spark` does not
ship (`configure_spark_with_delta_pip` downloads them from Maven at session start):
`spark+delta` takes local jars from IDEMTEST_DELTA_JARS (or Maven coordinates from
IDEMTEST_DELTA_PACKAGES where Maven is reachable). Without them, Delta tables are
checked through delta-rs (`deltalake`), which `--idem-db spark` always supports.
"""

from __future__ import annotations

import atexit
import itertools
import json
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._defaults import STATE_TABLE
from .._errors import BackendError, MissingExtraError, SpecError
from .._extras import require
from ..engine.clock import sql_now
from ..instrument import abbreviate, current
from . import scratch
from .base import Backend, Sandbox, run_setup, validate_schema
from .sqlclock import clocked

if TYPE_CHECKING:
    from ..instrument import Controller
    from ..spec import Source, Spec, Target

#: local jar files (comma-separated) of delta-spark and delta-storage, for `spark+delta`
DELTA_JARS_ENV = "IDEMTEST_DELTA_JARS"
#: or Maven coordinates (io.delta:delta-spark_2.13:<version>), where Maven Central is reachable
DELTA_PACKAGES_ENV = "IDEMTEST_DELTA_PACKAGES"
STATE_FILE = "_idemtest_state.json"

_counter = itertools.count(1)
_lock = threading.RLock()
_session: Any = None  # the process-wide SparkSession
_session_kind: str | None = None  # "spark" or "spark+delta": what it was started with
_warehouse: Path | None = None
#: seconds the JVM and the SparkSession took to start (bench/spark_bench.py)
session_seconds: float = 0.0
_harness = threading.local()  # set while idemtest itself talks to Spark: never a boundary


# --- the session -----------------------------------------------------------------------


def _check_java() -> None:
    """pyspark only says 'Java gateway process exited' when Java is missing: name the fix first."""
    home = os.environ.get("JAVA_HOME")
    if home:
        java = Path(home) / "bin" / "java"
        if not os.access(java, os.X_OK):
            raise BackendError(
                f"JAVA_HOME={home!r} has no bin/java, so Spark cannot start; point JAVA_HOME at a Java 17+ install "
                "(e.g. /usr/lib/jvm/java-17-openjdk-amd64) or unset it to use the `java` on PATH"
            )
        cmd = str(java)
    else:
        found = shutil.which("java")
        if found is None:
            raise BackendError(
                "no Java found (JAVA_HOME unset and no `java` on PATH), so Spark cannot start; install Java 17+ "
                "(Debian/Ubuntu: apt-get install openjdk-17-jre-headless) or set JAVA_HOME"
            )
        cmd = found
    try:
        out = subprocess.run([cmd, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise BackendError(f"{cmd} -version failed ({e}); Spark needs a working Java 17+ (set JAVA_HOME)") from None
    m = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if m:
        major = int(m.group(1)) if m.group(1) != "1" else int(m.group(2) or 0)
        if major < 17:
            raise BackendError(f"{cmd} is Java {major}; pyspark 4 needs Java 17 or newer: install it and set JAVA_HOME")


def _delta_config(kind: str) -> dict[str, str]:
    if kind != "spark+delta":
        return {}
    jars = os.environ.get(DELTA_JARS_ENV, "").strip()
    packages = os.environ.get(DELTA_PACKAGES_ENV, "").strip()
    conf = {
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
    }
    if jars:
        missing = [j for j in jars.split(",") if not Path(j.strip()).is_file()]
        if missing:
            raise BackendError(f"{DELTA_JARS_ENV} names jars that do not exist: {missing}; give the paths of delta-spark_2.13-<v>.jar and delta-storage-<v>.jar")
        conf["spark.jars"] = jars
    elif packages:
        conf["spark.jars.packages"] = packages
    if jars or packages:
        # delta-spark's Python API (DeltaTable on Spark) beside the jars; not in the extra,
        # since its version must match the jars'
        try:
            require("delta", "spark")
        except MissingExtraError:
            raise BackendError("--idem-db spark+delta needs delta-spark's Python package beside its jars: pip install delta-spark (the version of your jars)") from None
        return conf
    raise BackendError(
        "--idem-db spark+delta needs the Delta Lake jars, and `pip install delta-spark` does not ship them "
        "(configure_spark_with_delta_pip downloads them from Maven Central when the session starts). Fix: "
        f"set {DELTA_JARS_ENV}=/path/delta-spark_2.13-<v>.jar,/path/delta-storage-<v>.jar (local jars matching your pyspark), "
        f"or {DELTA_PACKAGES_ENV}=io.delta:delta-spark_2.13:<v> where Maven Central is reachable (spark.jars.packages). "
        "Without them, use --idem-db spark: Delta tables written with delta-rs (`deltalake`: write_deltalake, "
        "DeltaTable.merge) are checked there"
    )


def session(kind: str = "spark") -> Any:
    """The process-wide SparkSession, started on first use (local[1], no UI, quiet)."""
    global _session, _session_kind, _warehouse, session_seconds
    with _lock:
        if _session is not None:
            if kind == "spark+delta" and _session_kind != "spark+delta":
                raise BackendError(
                    "a SparkSession without Delta is already running in this process, and Spark cannot add jars to a running JVM; "
                    "run the spark+delta checks in their own pytest run (--idem-db spark+delta)"
                )
            return _session
        require("pyspark", "spark")
        _check_java()
        delta = _delta_config(kind)
        from pyspark.sql import SparkSession

        scratch.sweep("spark")  # folders a killed test process left behind
        _warehouse = scratch.make("spark")
        t0 = time.perf_counter()
        builder = SparkSession.builder.master("local[1]").appName("idemtest")
        conf = {
            "spark.ui.enabled": "false",
            "spark.ui.showConsoleProgress": "false",
            "spark.sql.shuffle.partitions": "1",
            "spark.default.parallelism": "1",
            "spark.sql.adaptive.enabled": "false",
            # tiny data: compiling generated code costs more than it saves
            "spark.sql.codegen.wholeStage": "false",
            "spark.sql.codegen.factoryMode": "NO_CODEGEN",
            "spark.sql.session.timeZone": "UTC",
            "spark.sql.catalogImplementation": "in-memory",
            "spark.sql.warehouse.dir": str(_warehouse / "warehouse"),
            "spark.driver.extraJavaOptions": f"-XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Dderby.system.home={_warehouse}",
            **delta,
        }
        for k, v in conf.items():
            builder = builder.config(k, v)
        try:
            spark = builder.getOrCreate()
        except Exception as e:
            text = " ".join(str(e).split())
            if "JAVA_GATEWAY_EXITED" in text or "Java gateway" in text:
                raise BackendError(f"Spark could not start its JVM ({text[:200]}); check that Java 17+ is installed and JAVA_HOME points at it") from None
            if delta and ("delta" in text.lower() or "ClassNotFound" in text):
                raise BackendError(f"Spark could not load Delta Lake ({text[:300]}); the jars must match pyspark's Spark and Scala version (see {DELTA_JARS_ENV})") from None
            raise
        spark.sparkContext.setLogLevel("ERROR")
        session_seconds = time.perf_counter() - t0
        _session, _session_kind = spark, kind
        install_patches()
        atexit.register(stop_session)
        return spark


def stop_session() -> None:
    global _session, _session_kind, _warehouse
    with _lock:
        if _session is not None:
            try:
                _session.stop()
            except Exception:
                pass
            _session = _session_kind = None
        if _warehouse is not None:
            shutil.rmtree(_warehouse, ignore_errors=True)
            _warehouse = None


@contextmanager
def harness() -> Iterator[None]:
    """idemtest's own Spark calls (loading sources, reading targets): never boundaries."""
    prev = getattr(_harness, "on", False)
    _harness.on = True
    try:
        yield
    finally:
        _harness.on = prev


def _ctl() -> Controller | None:
    if getattr(_harness, "on", False) or getattr(_harness, "depth", 0):
        return None
    return current()


# --- write boundaries ------------------------------------------------------------------


def _local(path: str) -> str:
    return path[len("file:"):] if path.startswith("file:") else path


def _data_dirs(root: str) -> dict[str, frozenset[str]]:
    """Relative folder -> its visible data files (Spark skips names starting with _ or .)."""
    out: dict[str, frozenset[str]] = {}
    if not os.path.isdir(root):
        return out
    for here, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(("_", "."))]
        data = frozenset(f for f in files if not f.startswith(("_", ".")))
        if data:
            out[os.path.relpath(here, root)] = data
    return out


class PartialWrite:
    """A non-atomic file write at `location`: what a crash inside its job leaves."""

    def __init__(self, location: str, static_overwrite: bool, spark: Any) -> None:
        self.location = _local(location)
        self.static = static_overwrite
        self.spark = spark
        self.backup: str | None = None
        self.before: dict[str, frozenset[str]] = {}

    def save(self) -> None:
        self.before = _data_dirs(self.location)
        if self.before:
            self.backup = self.location.rstrip("/") + ".idemtest-backup"
            shutil.rmtree(self.backup, ignore_errors=True)
            shutil.copytree(self.location, self.backup)

    def revert(self, keep_half: bool) -> None:
        """Undo the job commit of the written folders (all, or the later half in sorted order)."""
        after = _data_dirs(self.location)
        written = sorted(d for d, files in after.items() if self.before.get(d) != files)
        undo = written[(len(written) + 1) // 2 :] if keep_half else written
        for d in undo:
            here = os.path.normpath(os.path.join(self.location, d))
            for f in after[d]:
                os.unlink(os.path.join(here, f))  # the new files were never renamed into place
            if not self.static and d in self.before and self.backup is not None:
                # an append or a dynamic overwrite replaces a folder only at its commit: the old files stay
                for f in self.before[d]:
                    shutil.copy2(os.path.join(self.backup, d, f), os.path.join(here, f))
        if self.backup is not None:
            shutil.rmtree(self.backup, ignore_errors=True)
        with harness():
            try:
                self.spark.catalog.refreshByPath(self.location)
            except Exception:
                pass


def write_boundary(kind: str, text: str, fn: Callable[[], Any], partial: Callable[[], PartialWrite | None] | None = None) -> Any:
    """Run one Spark write as the boundaries a cluster would have (see the module doc)."""
    ctl = _ctl()
    if ctl is None:
        return _nested(fn)
    b = ctl.boundary(kind, text)
    if partial is None:
        out = _nested(fn)
        ctl.done(b)
        return out
    fault = ctl.fault
    if fault is not None and fault.at == b.index + 1:
        # the planned crash lands inside this write's job: play the write, then undo its commit
        pw = partial()
        if pw is not None:
            pw.save()
        out = _nested(fn)
        if pw is not None:
            pw.revert(keep_half=fault.when == "after")
    else:
        out = _nested(fn)
    c = ctl.boundary("commit", f"job commit of {text}")
    ctl.done(c)
    ctl.done(b)
    return out


def _nested(fn: Callable[[], Any]) -> Any:
    """A write calling another patched write (parquet() -> save()) is one boundary."""
    _harness.depth = getattr(_harness, "depth", 0) + 1
    try:
        return fn()
    finally:
        _harness.depth -= 1


def _conf(spark: Any, key: str, default: str) -> str:
    try:
        return str(spark.conf.get(key, default))
    except Exception:
        return default


def table_location(spark: Any, name: str) -> str | None:
    """Where a catalog table keeps its files (None: no such table yet)."""
    with harness():
        try:
            rows = spark.sql(f"DESCRIBE TABLE EXTENDED {name}").collect()
        except Exception:
            return None
    for r in rows:
        if r[0] == "Location":
            return _local(str(r[1]))
    return None


def _default_location(spark: Any, name: str) -> str | None:
    with harness():
        try:
            db = spark.catalog.getDatabase(spark.catalog.currentDatabase())
            return _local(str(db.locationUri)).rstrip("/") + "/" + name.split(".")[-1].strip("`").lower()
        except Exception:
            return None


def _is_delta(location: str | None) -> bool:
    return location is not None and os.path.isdir(os.path.join(location, "_delta_log"))


_WRITER_STATE = "_idemtest_writer"


def _wstate(w: Any) -> dict[str, Any]:
    st = w.__dict__.get(_WRITER_STATE)
    if st is None:
        st = {"mode": None, "format": None, "options": {}}
        w.__dict__[_WRITER_STATE] = st
    return st


def _writer_partial(w: Any, target: str, is_path: bool, mode: str | None, fmt: str | None, options: dict[str, Any], overwrite: bool | None = None) -> Callable[[], PartialWrite | None] | None:
    st = _wstate(w)
    spark = w._spark
    mode = (mode or st["mode"] or ("overwrite" if overwrite else "append" if overwrite is not None else "errorifexists")).lower()
    fmt = (fmt or st["format"] or _conf(spark, "spark.sql.sources.default", "parquet")).lower()
    if fmt == "delta":
        return None  # Delta on Spark: one atomic commit
    opts = {**st["options"], **{k.lower(): v for k, v in options.items()}}

    def make() -> PartialWrite | None:
        location = target if is_path else (table_location(spark, target) or _default_location(spark, target))
        if location is None or _is_delta(location):
            return None
        pom = str(opts.get("partitionoverwritemode") or _conf(spark, "spark.sql.sources.partitionOverwriteMode", "static")).lower()
        # saveAsTable in overwrite mode replaces the whole table whatever partitionOverwriteMode says
        static = mode == "overwrite" and (pom == "static" or (not is_path and overwrite is None))
        return PartialWrite(location, static, spark)

    return make


_SQL_WRITE = re.compile(r"^\s*(?:--[^\n]*\n\s*|/\*.*?\*/\s*)*(INSERT|MERGE|DELETE|UPDATE|CREATE|REPLACE|DROP|ALTER|TRUNCATE|COPY|OPTIMIZE|VACUUM|RESTORE|MSCK)\b", re.I | re.S)
_SQL_INSERT = re.compile(r"^\s*INSERT\s+(INTO|OVERWRITE)\s+(?:TABLE\s+)?([`\w.]+)", re.I)


def _sql_partial(spark: Any, text: str) -> Callable[[], PartialWrite | None] | None:
    m = _SQL_INSERT.match(re.sub(r"^\s*(--[^\n]*\n\s*|/\*.*?\*/\s*)*", "", text, flags=re.S))
    if m is None:
        return None
    overwrite, table = m.group(1).upper() == "OVERWRITE", m.group(2)

    def make() -> PartialWrite | None:
        location = table_location(spark, table)
        if location is None or _is_delta(location):
            return None
        static = overwrite and _conf(spark, "spark.sql.sources.partitionOverwriteMode", "static").lower() == "static"
        return PartialWrite(location, static, spark)

    return make


_patched = False


def install_patches() -> None:
    """Wrap Spark's and Delta's write calls once per process; they are boundaries only
    inside a run (outside, or in idemtest's own calls, they pass straight through)."""
    global _patched
    with _lock:
        if _patched:
            return
        _patch_pyspark()
        _patch_deltalake()
        _patch_delta_spark()
        _patched = True


def _patch_pyspark() -> None:
    from pyspark.sql import readwriter
    from pyspark.sql.session import SparkSession

    W = readwriter.DataFrameWriter

    def recorder(name: str, key: str) -> None:
        orig = getattr(W, name)

        def rec(self: Any, *args: Any, **kwargs: Any) -> Any:
            st = _wstate(self)
            if key == "options":
                st["options"].update({k.lower(): v for k, v in kwargs.items()})
            elif key == "option":
                st["options"][str(args[0]).lower()] = args[1]
            elif args and isinstance(args[0], str):
                st[key] = args[0]
            out = orig(self, *args, **kwargs)
            if out is not self and isinstance(out, W):
                out.__dict__[_WRITER_STATE] = st
            return out

        setattr(W, name, rec)

    recorder("mode", "mode")
    recorder("format", "format")
    recorder("option", "option")
    recorder("options", "options")

    orig_save, orig_save_as, orig_insert = W.save, W.saveAsTable, W.insertInto

    def save(self: Any, path: str | None = None, format: str | None = None, mode: str | None = None, partitionBy: Any = None, **options: Any) -> Any:
        target = path or _wstate(self)["options"].get("path")
        part = _writer_partial(self, target, True, mode, format, options) if target else None
        what = f"save({target!r})" if target else "save()"
        return write_boundary("write", f"{_mode_text(self, mode)}{what}", lambda: orig_save(self, path, format, mode, partitionBy, **options), part)

    def save_as_table(self: Any, name: str, format: str | None = None, mode: str | None = None, partitionBy: Any = None, **options: Any) -> Any:
        part = _writer_partial(self, name, False, mode, format, options)
        return write_boundary("write", f"{_mode_text(self, mode)}saveAsTable({name!r})", lambda: orig_save_as(self, name, format, mode, partitionBy, **options), part)

    def insert_into(self: Any, tableName: str, overwrite: bool | None = None) -> Any:
        part = _writer_partial(self, tableName, False, "overwrite" if overwrite else None, None, {}, overwrite=bool(overwrite))
        return write_boundary("write", f"insertInto({tableName!r}{', overwrite=True' if overwrite else ''})", lambda: orig_insert(self, tableName, overwrite), part)

    W.save, W.saveAsTable, W.insertInto = save, save_as_table, insert_into  # type: ignore[method-assign, unused-ignore]

    for fmt in ("parquet", "csv", "json", "orc", "text"):
        _patch_format(W, fmt)

    V2 = readwriter.DataFrameWriterV2
    for name in ("create", "replace", "createOrReplace", "append", "overwrite", "overwritePartitions"):
        _patch_v2(V2, name)

    orig_sql = SparkSession.sql

    def sql(self: Any, sqlQuery: Any, args: Any = None, **kwargs: Any) -> Any:
        if isinstance(sqlQuery, str):
            sqlQuery = clocked(sqlQuery, "spark")  # current_date() etc. read the run's simulated time
        text = str(sqlQuery)
        if _ctl() is None or not _SQL_WRITE.match(text):
            return orig_sql(self, sqlQuery, args, **kwargs)
        return write_boundary("sql", abbreviate(" ".join(text.split()), 200), lambda: orig_sql(self, sqlQuery, args, **kwargs), _sql_partial(self, text))

    SparkSession.sql = sql  # type: ignore[method-assign, unused-ignore]
    _patch_spark_clock()


def _patch_spark_clock() -> None:
    """The DataFrame API's clock reads the run's simulated time too, as SQL does: Spark
    evaluates `current_date()` in the JVM, out of reach of Python's patched clock, so
    `F.current_date()` (and `F.expr` / `selectExpr` / `filter` text naming it) becomes a
    literal of the simulated instant while a run's clock is active. A function imported
    by name before idemtest patched the module (`from pyspark.sql.functions import
    current_date` at import time) keeps Spark's own clock."""
    from pyspark.sql import DataFrame
    from pyspark.sql import functions as F

    orig_expr = F.expr

    def expr(text: Any) -> Any:
        return orig_expr(clocked(text, "spark", fragment=True) if isinstance(text, str) else text)

    F.expr = expr  # type: ignore[assignment, unused-ignore]

    def clock_function(name: str) -> None:
        orig = getattr(F, name, None)
        if orig is None:  # older Spark without this spelling
            return

        def now_literal(*args: Any, **kwargs: Any) -> Any:
            if args or kwargs or sql_now() is None:
                return orig(*args, **kwargs)
            return orig_expr(clocked(f"{name}()", "spark", fragment=True)).alias(f"{name}()")

        setattr(F, name, now_literal)

    for name in ("current_timestamp", "current_date", "now", "curdate"):
        clock_function(name)

    orig_select_expr, orig_filter = DataFrame.selectExpr, DataFrame.filter

    def select_expr(self: Any, *exprs: Any) -> Any:
        if len(exprs) == 1 and isinstance(exprs[0], list):
            exprs = tuple(exprs[0])
        return orig_select_expr(self, *[clocked(e, "spark", fragment=True) if isinstance(e, str) else e for e in exprs])

    def filter_(self: Any, condition: Any) -> Any:
        return orig_filter(self, clocked(condition, "spark", fragment=True) if isinstance(condition, str) else condition)

    DataFrame.selectExpr = select_expr  # type: ignore[method-assign, unused-ignore]
    DataFrame.filter = DataFrame.where = filter_  # type: ignore[method-assign, assignment, unused-ignore]


def _mode_text(w: Any, mode: str | None) -> str:
    m = mode or _wstate(w)["mode"]
    return f"mode({m!r}).".replace("'", '"') if m else ""


def _patch_format(W: Any, fmt: str) -> None:
    orig = getattr(W, fmt)

    def write(self: Any, path: str, *args: Any, **kwargs: Any) -> Any:
        mode = kwargs.get("mode") or (args[0] if args and isinstance(args[0], str) else None)
        part = _writer_partial(self, path, True, mode, fmt, {})
        return write_boundary("write", f"{_mode_text(self, mode)}{fmt}({path!r})", lambda: orig(self, path, *args, **kwargs), part)

    setattr(W, fmt, write)


def _patch_v2(V2: Any, name: str) -> None:
    orig = getattr(V2, name)

    def write(self: Any, *args: Any, **kwargs: Any) -> Any:
        table = getattr(self, "_table", "?")
        return write_boundary("write", f"writeTo({table!r}).{name}()", lambda: orig(self, *args, **kwargs))

    setattr(V2, name, write)


def _patch_deltalake() -> None:
    """delta-rs: every commit is atomic; crash before it or after it."""
    try:
        import deltalake
        from deltalake import table as dtable
        from deltalake.writer import writer as dwriter
    except ImportError:
        return
    orig_write = dwriter.write_deltalake_rust

    def write_rust(table_uri: Any, *args: Any, **kwargs: Any) -> Any:
        mode = kwargs.get("mode", "?")
        pred = kwargs.get("predicate")
        text = f"write_deltalake({_short_path(table_uri)!r}, mode={mode!r}{f', predicate={pred!r}' if pred else ''})"
        return write_boundary("delta", text, lambda: orig_write(table_uri, *args, **kwargs))

    dwriter.write_deltalake_rust = write_rust

    orig_merge = dtable.TableMerger.execute

    def merge_execute(self: Any) -> Any:
        pred = getattr(self, "predicate", None)
        return write_boundary("delta", f"DeltaTable.merge(predicate={pred!r}).execute()", lambda: orig_merge(self))

    dtable.TableMerger.execute = merge_execute  # type: ignore[method-assign, unused-ignore]

    for name in ("delete", "update"):
        orig = getattr(deltalake.DeltaTable, name)

        def call(self: Any, *args: Any, __orig: Any = orig, __name: str = name, **kwargs: Any) -> Any:
            return write_boundary("delta", f"DeltaTable({_short_path(self.table_uri)!r}).{__name}()", lambda: __orig(self, *args, **kwargs))

        setattr(deltalake.DeltaTable, name, call)


def _patch_delta_spark() -> None:
    """Delta on Spark (`spark+delta`): merge / delete / update commits."""
    try:
        from delta import tables
    except ImportError:
        return
    orig_exec = tables.DeltaMergeBuilder.execute

    def execute(self: Any) -> Any:
        return write_boundary("delta", "DeltaTable.merge(...).execute()", lambda: orig_exec(self))

    tables.DeltaMergeBuilder.execute = execute  # type: ignore[method-assign, unused-ignore]
    for name in ("delete", "update"):
        orig = getattr(tables.DeltaTable, name, None)
        if orig is None:
            continue

        def call(self: Any, *args: Any, __orig: Any = orig, __name: str = name, **kwargs: Any) -> Any:
            return write_boundary("delta", f"DeltaTable.{__name}()", lambda: __orig(self, *args, **kwargs))

        setattr(tables.DeltaTable, name, call)


def _short_path(uri: Any) -> str:
    text = str(uri)
    return text.rsplit("/", 1)[-1] if "/" in text else text


# --- run.conn on Spark ----------------------------------------------------------------------


class SparkCursor:
    def __init__(self, cols: list[str], rows: list[tuple[Any, ...]]) -> None:
        self.description = [(c,) for c in cols] if cols else None
        self._rows = rows

    def fetchone(self) -> tuple[Any, ...] | None:
        return self._rows.pop(0) if self._rows else None

    def fetchall(self) -> list[tuple[Any, ...]]:
        rows, self._rows = self._rows, []
        return rows


class SparkConnection:
    """`run.conn` on a Spark sandbox: `execute(sql)` runs Spark SQL (writes are
    boundaries), `.spark` is the session; `run.state` lives in a file of the sandbox."""

    def __init__(self, sandbox: SparkSandbox, ctl: Controller | None) -> None:
        self._sandbox = sandbox
        self._ctl = ctl

    @property
    def spark(self) -> Any:
        return self._sandbox.spark

    def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> SparkCursor:
        if STATE_TABLE in sql:
            return self._state(sql, parameters or [])
        df = self._sandbox.spark.sql(sql, args=list(parameters)) if parameters else self._sandbox.spark.sql(sql)
        if _SQL_WRITE.match(sql):
            return SparkCursor([], [])
        return SparkCursor(list(df.columns), [tuple(r) for r in df.collect()])

    def sql(self, sql: str, *args: Any, **kwargs: Any) -> Any:
        return self._sandbox.spark.sql(sql, *args, **kwargs)

    def _state(self, sql: str, params: Sequence[Any]) -> SparkCursor:
        path = self._sandbox.root / STATE_FILE
        data = json.loads(path.read_text()) if path.exists() else {}
        if sql.lstrip().upper().startswith("SELECT"):
            value = data.get(params[0])
            return SparkCursor(["value"], [] if value is None else [(value,)])
        key, value = params[0], params[1]

        def put() -> None:
            data[key] = value
            path.write_text(json.dumps(data))  # like a checkpoint file: written at once

        write_boundary("state", f"run.state[{key!r}] = {abbreviate(str(value), 60)}", put)
        return SparkCursor([], [])

    def commit(self) -> None:
        """Spark has no transactions: every write is on its own."""

    def rollback(self) -> None:
        pass

    def close(self) -> None:
        pass


# --- the sandbox ----------------------------------------------------------------------------

_ARROW_TYPES = {
    "BIGINT": "int64", "LONG": "int64", "INT": "int32", "INTEGER": "int32", "SMALLINT": "int16", "TINYINT": "int8",
    "DOUBLE": "float64", "FLOAT": "float32", "REAL": "float32", "BOOLEAN": "bool_", "BOOL": "bool_",
    "DATE": "date32", "VARCHAR": "string", "TEXT": "string", "STRING": "string", "CHAR": "string",
}


def spark_type(sqltype: str) -> str:
    """A Source column type as Spark SQL spells it."""
    t = sqltype.strip().upper()
    base = t.split("(")[0].strip()
    if base in ("VARCHAR", "TEXT", "CHAR", "CHARACTER VARYING", "BPCHAR"):
        return "STRING"
    if base in ("NUMERIC",):
        return "DECIMAL" + t[len(base):]
    if base in ("REAL",):
        return "FLOAT"
    if base in ("TIMESTAMPTZ", "TIMESTAMP WITH TIME ZONE"):
        return "TIMESTAMP"
    return t


def _arrow_type(pa: Any, sqltype: str) -> Any:
    t = spark_type(sqltype)
    base = t.split("(")[0].strip()
    if base == "DECIMAL":
        m = re.search(r"\((\d+)\s*,\s*(\d+)\)", t)
        p, s = (int(m.group(1)), int(m.group(2))) if m else (10, 0)
        return pa.decimal128(p, s)
    if base.startswith("TIMESTAMP"):
        return pa.timestamp("us", tz="UTC")
    name = _ARROW_TYPES.get(base)
    if name is None:
        raise SpecError(f"column type {sqltype!r} has no Spark sandbox mapping; use BIGINT, INT, DOUBLE, DECIMAL(p,s), VARCHAR, BOOLEAN, DATE or TIMESTAMP")
    return getattr(pa, name)()


def _arrow_value(v: Any, sqltype: str) -> Any:
    if v is None:
        return None
    t = spark_type(sqltype)
    if t.startswith("TIMESTAMP") and getattr(v, "tzinfo", 1) is None:
        from datetime import timezone

        return v.replace(tzinfo=timezone.utc)  # the generated times are UTC, as the session's zone
    if t.startswith("DECIMAL") and not isinstance(v, Decimal):
        return Decimal(str(v))
    return v


def _plain_name(table: str, what: str) -> str:
    if "." in table:
        raise SpecError(
            f"{what} {table!r}: on Spark every table lives in the sandbox's own database (the session's current one); "
            f"name it without a database ({table.split('.')[-1]!r}), as the job does with spark.table(name)"
        )
    return table


class SparkSandbox(Sandbox):
    backend = "spark"
    dialect = "spark"
    param = "?"

    def __init__(self, backend: SparkBackend) -> None:
        n = next(_counter)
        super().__init__(f"idemtest_s{n}")
        self._backend = backend
        base = backend.session  # starts the process's session (and its warehouse) on first use
        assert _warehouse is not None
        self.root = _warehouse / self.name
        self.root.mkdir(parents=True)
        #: the sandbox's tables live here (Delta tables written by path too: warehouse/<name>)
        self.warehouse = self.root / "db"
        self.spark = base.newSession()
        self._locations: dict[str, str] = {}
        #: rows each source table holds now (a job may rightly write nothing when all are empty)
        self.source_rows: dict[str, int] = {}
        self._reads: dict[str, tuple[Any, list[str], list[tuple[Any, ...]]]] = {}
        with harness():
            self.spark.sql(f"CREATE DATABASE {self.name} LOCATION '{self.warehouse}'")
            self.spark.catalog.setCurrentDatabase(self.name)

    def quote(self, ident: str) -> str:
        return ".".join("`" + p.replace("`", "``") + "`" for p in ident.split("."))

    def connect(self, ctl: Controller | None, kind: str | None = "connect") -> Any:
        return SparkConnection(self, ctl)

    def raw(self) -> Any:
        return SparkConnection(self, None)

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        with harness():
            self.spark.sql(sql, args=list(params)) if params else self.spark.sql(sql)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        raise BackendError("executemany is not supported on a Spark sandbox; idemtest loads Spark sources itself")

    def query(self, sql: str, params: Sequence[Any] | None = None) -> tuple[list[str], list[tuple[Any, ...]]]:
        with harness():
            df = self.spark.sql(sql, args=list(params)) if params else self.spark.sql(sql)
            return list(df.columns), [tuple(r) for r in df.collect()]

    def split_script(self, sql: str) -> list[str]:
        return _split(sql)

    def create_state_store(self) -> None:
        """run.state is a JSON file in the sandbox folder (a job's checkpoint file)."""

    def prepare(self, spec: Spec, validate: bool = True) -> None:
        for s in spec.sources:
            if s.landing is None:
                self._create_source(s)
        run_setup(self, spec)
        for t in spec.targets:
            if t.query is None and t.file is None:
                _plain_name(t.table, "Target")
        if validate:
            validate_schema(self, spec)

    def _create_source(self, source: Source) -> None:
        name = _plain_name(source.table, "Source")
        cols = ", ".join(f"{self.quote(c)} {spark_type(t)}" for c, t in source.columns.items())
        self.execute(f"CREATE TABLE IF NOT EXISTS {self.quote(name)} ({cols}) USING parquet LOCATION '{self.warehouse / name.lower()}'")

    def load_source(self, source: Source, rows: Sequence[dict[str, Any]]) -> None:
        """The rows as one Parquet file written with pyarrow (a Spark job costs ~10x more)."""
        pa = require("pyarrow", "spark")
        import pyarrow.parquet as pq

        name = _plain_name(source.table, "Source")
        location = str(self.warehouse / name.lower())  # where prepare() created it
        self.source_rows[name] = len(rows)
        os.makedirs(location, exist_ok=True)
        for f in os.listdir(location):
            if not f.startswith(("_", ".")):
                os.unlink(os.path.join(location, f))
        if rows:
            arrays = {c: pa.array([_arrow_value(r.get(c), t) for r in rows], type=_arrow_type(pa, t)) for c, t in source.columns.items()}
            pq.write_table(pa.table(arrays), os.path.join(location, f"part-{next(_counter):05d}.parquet"))
        with harness():
            self.spark.sql(f"REFRESH TABLE {self.quote(name)}")

    def delta_path(self, table: str) -> Path:
        return self.warehouse / table

    def table_columns(self, table: str) -> list[str] | None:
        path = self.delta_path(table)
        if (path / "_delta_log").is_dir():
            from deltalake import DeltaTable

            return [f.name for f in DeltaTable(str(path)).schema().fields]
        with harness():
            if not self.spark.catalog.tableExists(table):
                return None
            return list(self.spark.table(self.quote(table)).columns)

    def snapshot(self, target: Target) -> tuple[list[str], list[tuple[Any, ...]]]:
        if target.query is not None or target.file is not None:
            return super().snapshot(target)
        path = self.delta_path(target.table)
        if (path / "_delta_log").is_dir() and _session_kind != "spark+delta":
            cols, rows = _read_delta(path)
        else:
            with harness():
                if not self.spark.catalog.tableExists(target.table):
                    return [], []
                cols, rows = self._read_table(target.table)
        ignore = set(target.ignore)
        keep = [i for i, c in enumerate(cols) if c not in ignore]
        if len(keep) == len(cols):
            return cols, rows
        return [cols[i] for i in keep], [tuple(r[i] for i in keep) for r in rows]

    def _read_table(self, table: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        """A catalog table through Spark; a read costs a Spark job (~0.1-0.2 s), so the last
        one is reused while the table's files and schema are unchanged (after a run that
        crashed before writing, and for the final read that follows the last step's)."""
        df = self.spark.table(self.quote(table))
        schema = df.schema.simpleString()  # analysis only, no job
        location = self._locations.get(table)
        if location is None or not os.path.isdir(location):  # new, or dropped and created again
            location = table_location(self.spark, table) or ""
            self._locations[table] = location
        key = (schema, location, _fingerprint(location)) if location else None
        hit = self._reads.get(table)
        if key is not None and hit is not None and hit[0] == key:
            return hit[1], list(hit[2])
        self.spark.catalog.refreshTable(table)  # files may have changed under Spark's cache
        df = self.spark.table(self.quote(table))
        cols, rows = list(df.columns), [tuple(r) for r in df.collect()]
        if key is not None:
            self._reads[table] = (key, cols, rows)
        return cols, rows

    def close(self) -> None:
        try:
            with harness():
                self.spark.sql(f"DROP DATABASE IF EXISTS {self.name} CASCADE")
        except Exception:
            pass
        shutil.rmtree(self.root, ignore_errors=True)
        self._backend.sandboxes.discard(self)


def _fingerprint(root: str) -> tuple[tuple[str, int, int], ...] | None:
    """What a read of the folder depends on: every visible file's path, size and mtime."""
    if not os.path.isdir(root):
        return None
    out = []
    for here, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(("_", "."))]
        for f in files:
            if not f.startswith(("_", ".")):
                st = os.stat(os.path.join(here, f))
                out.append((os.path.relpath(os.path.join(here, f), root), st.st_size, st.st_mtime_ns))
    return tuple(sorted(out))


def _split(sql: str) -> list[str]:
    """Statements of a setup script (`;` outside quotes ends one)."""
    out: list[str] = []
    buf: list[str] = []
    quote = ""
    for ch in sql:
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"`":
            quote = ch
        elif ch == ";":
            stmt = "".join(buf).strip()
            if stmt:
                out.append(stmt)
            buf = []
            continue
        buf.append(ch)
    stmt = "".join(buf).strip()
    if stmt:
        out.append(stmt)
    return out


def _read_delta(path: Path) -> tuple[list[str], list[tuple[Any, ...]]]:
    """A Delta table's current version, read through its log (delta-rs)."""
    from deltalake import DeltaTable

    table = DeltaTable(str(path)).to_pyarrow_table()
    cols = list(table.column_names)
    rows = [tuple(_naive(v) for v in r.values()) for r in table.to_pylist()]
    return cols, rows


def _naive(v: Any) -> Any:
    """UTC timestamps as naive values, as Spark's collect() returns them."""
    if getattr(v, "tzinfo", None) is not None:
        from datetime import timezone

        return v.astimezone(timezone.utc).replace(tzinfo=None)
    return v


class SparkBackend(Backend):
    """`--idem-db spark` (Parquet / Hive-style tables, and Delta through delta-rs) or
    `spark+delta` (Delta Lake on Spark: needs the delta-spark jars)."""

    dialect = "spark"

    def __init__(self, kind: str = "spark") -> None:
        self.name = kind
        self.kind = kind
        self.sandboxes: set[SparkSandbox] = set()

    @property
    def session(self) -> Any:
        return session(self.kind)

    def create(self, spec: Spec | None = None) -> SparkSandbox:
        try:
            sb = SparkSandbox(self)
        except MissingExtraError:
            raise
        self.sandboxes.add(sb)
        return sb

    def close(self) -> None:
        """Drop this backend's sandboxes; the session stays up for the process (atexit stops it)."""
        for sb in list(self.sandboxes):
            sb.close()

    def describe(self) -> str:
        return f"{self.kind} (local Spark session)"
