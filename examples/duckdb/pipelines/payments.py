"""Loads of the OLTP `src.payments` table (payment attempts whose status
moves: authorised -> captured -> refunded) into `analytics.payments`."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

COLUMNS = "payment_id, order_id, status, amount, updated_at"
SELECT_WINDOW = f"SELECT {COLUMNS} FROM src.payments WHERE updated_at >= ? AND updated_at < ?"


def upsert_payments(conn: Any, window_start: datetime, window_end: datetime, lookback: timedelta = timedelta(hours=1)) -> None:
    """CORRECT: guarded upsert — ON CONFLICT DO UPDATE … WHERE the incoming
    version is newer.

    Re-reads the window plus a lookback for late commits. The guard makes the
    order of runs irrelevant: a backfill or a delayed retry that reads an
    older version can never overwrite a newer one already loaded.
    """
    conn.execute(
        f"""
        INSERT INTO analytics.payments ({COLUMNS}) {SELECT_WINDOW}
        ON CONFLICT (payment_id) DO UPDATE SET
            order_id   = excluded.order_id,
            status     = excluded.status,
            amount     = excluded.amount,
            updated_at = excluded.updated_at
        WHERE excluded.updated_at > analytics.payments.updated_at
        """,
        [window_start - lookback, window_end],
    )


def insert_payments_ignore_existing(conn: Any, window_start: datetime, window_end: datetime, lookback: timedelta = timedelta(hours=1)) -> None:
    """BUG (ON CONFLICT DO NOTHING loses updates): the keyed cousin of
    dlt-hub/dlt#971 (dedupe that keeps the first version it saw).

    "Idempotent" because a re-run inserts nothing twice — but a payment that
    was authorised in one window and captured or refunded in a later one
    keeps its first status forever.
    """
    conn.execute(
        f"INSERT INTO analytics.payments ({COLUMNS}) {SELECT_WINDOW} ON CONFLICT (payment_id) DO NOTHING",
        [window_start - lookback, window_end],
    )
