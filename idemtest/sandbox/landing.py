"""File sources: rows land as files in a folder, one file per arrival batch.

How Airflow, Dagster and zoomcamp-style jobs usually receive data: an
upstream system drops `orders/2026-06-01T03:00:00.csv` and the load reads
whatever files are there. Files that have not arrived by the run's time are
not there yet; a file never changes after it lands."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from datetime import datetime

    from ..engine.model import Dataset
    from ..spec import Source
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


def write_landing(sandbox: Sandbox, source: Source, data: Dataset, t: datetime | None) -> None:
    """Make the folder hold exactly the batches that have arrived by t."""
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
    cols = list(source.columns)
    for name, rows in wanted.items():
        path = folder / name
        if path.exists():
            continue
        tmp = folder / f".{name}.tmp"  # land atomically: a reader never sees half a file
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
            _write_parquet(tmp, source, rows)
        tmp.rename(path)


def _write_parquet(path: Path, source: Source, rows: list[dict[str, Any]]) -> None:
    import duckdb

    from . import duckdb as sbduck

    connect = sbduck._original_connect or duckdb.connect
    con = connect(":memory:")
    try:
        cols = list(source.columns)
        con.execute("CREATE TABLE t (" + ", ".join(f'"{c}" {source.columns[c]}' for c in cols) + ")")
        con.executemany("INSERT INTO t VALUES (" + ", ".join("?" * len(cols)) + ")", [[r[c] for c in cols] for r in rows])
        con.execute(f"COPY t TO '{str(path).replace(chr(39), chr(39) * 2)}' (FORMAT parquet)")
    finally:
        con.close()
