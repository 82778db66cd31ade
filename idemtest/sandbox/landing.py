"""File sources and file targets, in the sandbox's folder (`run.landing`).

How Airflow, Dagster and zoomcamp-style jobs usually receive data, in the three
layouts `Source(path=...)` declares:

- no path: an upstream system drops one file per arrival batch,
  `orders/20260601T030000.csv`; a file never changes after it lands;
- `path="trips/trips_{partition}.parquet"`: one file per window, named from the
  window's label, holding the rows (arrived by the run's time) whose event time
  falls in it, rewritten when late rows arrive;
- `path="customers.csv"`: one file with the source's current state (a full export).

Files land atomically (written aside, then renamed). Targets declared with
`Target(file=...)` are read back from the same folder."""

from __future__ import annotations

import csv
import json
import shutil
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..spec import file_format

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from ..engine.model import Dataset
    from ..spec import Source, Target, Window
    from .base import Sandbox


_swept: list[bool] = []


def landing_dir(sandbox: Sandbox) -> Path:
    if sandbox.landing is None:
        from . import scratch

        if not _swept:
            _swept.append(True)
            scratch.sweep("landing")  # folders a killed run left behind
        sandbox.landing = scratch.make("landing")
    return sandbox.landing


def cleanup_landing(sandbox: Sandbox) -> None:
    if sandbox.landing is not None:
        prefix = str(sandbox.landing)
        for k in [k for k in _written if k.startswith(prefix)]:
            del _written[k]
        shutil.rmtree(sandbox.landing, ignore_errors=True)
        sandbox.landing = None


def _plain(v: Any) -> Any:
    from datetime import date, datetime
    from decimal import Decimal

    if isinstance(v, datetime):
        return v.isoformat(sep=" ")
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, Decimal):
        return str(v)
    return v


def write_landing(sandbox: Sandbox, source: Source, data: Dataset, t: datetime | None, windows: Sequence[Window] = ()) -> None:
    """Make the folder hold what has arrived by t, in the source's layout."""
    if source.path is not None:
        _write_pattern(landing_dir(sandbox), source, data, t, windows)
        return
    folder = landing_dir(sandbox) / source.table
    folder.mkdir(parents=True, exist_ok=True)
    batches: dict[datetime, list[dict[str, Any]]] = {}
    for v in data.sources.get(source.table, []):
        if t is None or v.arrival <= t:
            batches.setdefault(v.arrival, []).append(v.values)
    ext = {"csv": "csv", "jsonl": "jsonl", "parquet": "parquet"}[source.landing or "csv"]
    wanted = {f"{a.strftime('%Y%m%dT%H%M%S')}.{ext}": rows for a, rows in batches.items()}
    for old in folder.iterdir():
        if old.name not in wanted:
            old.unlink()
    for name, rows in wanted.items():
        path = folder / name
        if path.exists():
            continue
        _write_file(path, ext, source, rows)


def _write_pattern(root: Path, source: Source, data: Dataset, t: datetime | None, windows: Sequence[Window]) -> None:
    """Per-partition files (`{partition}` in the path) or one current-state file."""
    assert source.path is not None and source.landing is not None
    wanted: dict[Path, list[dict[str, Any]]] = {}
    if source.per_partition:
        for v in data.sources.get(source.table, []):
            if t is not None and v.arrival > t:
                continue
            event = v.event(source)
            w = next((w for w in windows if w.start <= event < w.end), None)
            if w is None:
                continue  # outside every window: no partition names it
            wanted.setdefault(root / source.path.replace("{partition}", w.partition), []).append(v.values)
        pattern = source.path.replace("{partition}", "*")
        for old in root.glob(pattern):
            if old not in wanted:
                old.unlink()
    else:
        wanted[root / source.path] = data.visible(source, t)
    for path, rows in wanted.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_file(path, source.landing, source, rows, replace=True)


def _write_file(path: Path, ext: str, source: Source, rows: Sequence[dict[str, Any]], replace: bool = False) -> None:
    """Write `rows` to `path` atomically: a reader never sees half a file. With
    `replace`, a file already holding the same rows is left as it is (its mtime too)."""
    folder = path.parent
    name = path.name
    digest = _digest(source, rows) if replace else ""
    if replace and path.exists() and _written.get(str(path)) == digest:
        return
    cols = list(source.columns)
    tmp = folder / f".{name}.tmp"
    if ext == "csv":
        with open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(cols)
            for r in rows:
                w.writerow([_plain(r[c]) for c in cols])
    elif ext == "jsonl":
        with open(tmp, "w") as f:
            for r in rows:
                f.write(json.dumps({c: _plain(r[c]) for c in cols}) + "\n")
    else:
        # the same rows recur across scenarios (one data set, many schedules): reuse the bytes
        key = digest or _digest(source, rows)
        cached = _parquet.get(key)
        if cached is None:
            _write_parquet(tmp, source, list(rows))
            if len(_parquet) >= 512:
                _parquet.clear()
            _parquet[key] = tmp.read_bytes()
        else:
            tmp.write_bytes(cached)
    tmp.rename(path)
    if replace:
        _written[str(path)] = digest


#: path -> digest of the rows last written there; kept here, not beside the file,
#: so a load globbing its folder sees only data files
_written: dict[str, str] = {}
#: digest of rows (and their columns' types) -> the Parquet file holding them
_parquet: dict[str, bytes] = {}


def _digest(source: Source, rows: Sequence[dict[str, Any]]) -> str:
    import hashlib

    return hashlib.sha256(repr((sorted(source.columns.items()), [[_plain(r[c]) for c in source.columns] for r in rows])).encode()).hexdigest()


# --- file targets ---------------------------------------------------------------------------


def read_files(sandbox: Sandbox, target: Target) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The rows of every file a file target's pattern matches; none: no columns, no rows.

    Read with DuckDB (csv/parquet/json readers), column types as it infers them
    from the files, so the clean run and a scenario are read alike."""
    assert target.file is not None
    root = landing_dir(sandbox)
    files = sorted(p for p in root.glob(target.file.replace("{partition}", "*")) if p.is_file() and not p.name.startswith("."))
    if not files:
        return [], []
    fmt = file_format(target.file)
    reader = {"csv": "read_csv", "parquet": "read_parquet", "jsonl": "read_json_auto"}[fmt or "csv"]
    cur = _cursor()
    cols: list[str] = []
    rows: list[tuple[Any, ...]] = []
    try:
        # file by file: a header-only CSV (an empty partition) would turn every column to text in a union
        for f in files:
            got = cur.execute(f"SELECT * FROM {reader}('{str(f).replace(chr(39), chr(39) * 2)}')")
            names = [d[0] for d in got.description]
            data = got.fetchall()
            if not data:
                continue
            for n in names:
                if n not in cols:
                    cols.append(n)
            rows.extend(tuple(dict(zip(names, r)).get(c) for c in cols) for r in data)
        width = len(cols)
        return cols, [r + (None,) * (width - len(r)) for r in rows]
    finally:
        cur.close()


_files_db: list[Any] = []
_files_lock = threading.Lock()


def _cursor() -> Any:
    """A cursor of one private in-memory DuckDB (opening a database costs ~30 ms;
    a cursor, well under one): writes Parquet, reads file targets."""
    with _files_lock:
        if not _files_db:
            import duckdb

            con = duckdb.connect(":memory:")  # not a sandbox path: the sandbox patch passes it through
            try:
                con.execute("SET TimeZone = 'UTC'")
            except Exception:
                pass
            _files_db.append(con)
        return _files_db[0].cursor()


def _write_parquet(path: Path, source: Source, rows: list[dict[str, Any]]) -> None:
    cur = _cursor()
    try:
        cols = list(source.columns)
        cur.execute("CREATE TEMP TABLE t (" + ", ".join(f'"{c}" {source.columns[c]}' for c in cols) + ")")
        if rows:
            cur.executemany("INSERT INTO t VALUES (" + ", ".join("?" * len(cols)) + ")", [[r[c] for c in cols] for r in rows])
        cur.execute(f"COPY t TO '{str(path).replace(chr(39), chr(39) * 2)}' (FORMAT parquet)")
        cur.execute("DROP TABLE t")
    finally:
        cur.close()
