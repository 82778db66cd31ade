"""A Singer-style target loading `src.order_lines` (key: order_id, line_no): the
tap emits the window's records, the target upserts each one by its primary key,
kept as one `_sdc_primary_key` column."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

COLUMNS = "order_id, line_no, quantity, updated_at"


def _records(conn: Any, window_start: datetime, window_end: datetime) -> list[tuple[Any, ...]]:
    return conn.execute(
        f"SELECT {COLUMNS} FROM src.order_lines WHERE updated_at >= ? AND updated_at < ? ORDER BY updated_at, order_id, line_no",
        [window_start, window_end],
    ).fetchall()


def _upsert(conn: Any, records: list[tuple[Any, ...]], primary_key: Any) -> None:
    conn.execute("BEGIN TRANSACTION")
    try:
        for order_id, line_no, quantity, updated_at in records:
            pk = primary_key(order_id, line_no)
            conn.execute("DELETE FROM analytics.order_lines WHERE _sdc_primary_key = ?", [pk])
            conn.execute("INSERT INTO analytics.order_lines VALUES (?, ?, ?, ?, ?)", [pk, order_id, line_no, quantity, updated_at])
        conn.execute("COMMIT")
    except Exception:
        conn.execute("ROLLBACK")
        raise


def upsert_lines(conn: Any, window_start: datetime, window_end: datetime) -> None:
    """CORRECT: the primary key is the key's parts as a JSON array, so no two
    keys share it (the fix of MeltanoLabs/target-postgres PR 446)."""
    _upsert(conn, _records(conn, window_start, window_end), lambda *parts: json.dumps(parts))


def upsert_lines_concatenated_key(conn: Any, window_start: datetime, window_end: datetime) -> None:
    """BUG (composite key concatenated): the parts are joined without a separator,
    as in MeltanoLabs/target-postgres PR 446, so order 1 line 11 and order 11 line 1
    share the key "111" and one replaces the other — in the clean run as well."""
    _upsert(conn, _records(conn, window_start, window_end), lambda *parts: "".join(str(p) for p in parts))
