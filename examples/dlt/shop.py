"""The shop's dlt resources: the pipeline code under test, unchanged by the tests.

Every resource pulls from the shop's API (`api.py`); `test_shop.py` checks each one with
`idemtest.dlt.check`, which answers the API calls with generated rows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import dlt

from . import api

EPOCH = datetime(2000, 1, 1)


UPSERT = {"disposition": "merge", "strategy": "upsert"}


# correct: every run upserts the full order list on its primary key (one MERGE statement)
@dlt.resource(name="orders", primary_key="order_id", write_disposition=UPSERT)
def orders_full() -> Iterator[Any]:
    yield api.fetch_orders()


# correct: incremental on updated_at, re-reading 2 hours behind the newest loaded
# order (lag) so orders that reach the API up to 2 hours late are still merged
@dlt.resource(name="orders", primary_key="order_id", write_disposition=UPSERT)
def orders_incremental(
    updated_at: dlt.sources.incremental[datetime] = dlt.sources.incremental("updated_at", initial_value=EPOCH, lag=7200),  # noqa: B008 - dlt's own idiom
) -> Iterator[Any]:
    yield api.fetch_orders(updated_since=updated_at.start_value)


# buggy: the same cursor without lag: an order that reaches the API after a newer one
# was loaded has updated_at below the cursor and is filtered out for good
@dlt.resource(name="orders", primary_key="order_id", write_disposition=UPSERT)
def orders_no_lag(
    updated_at: dlt.sources.incremental[datetime] = dlt.sources.incremental("updated_at", initial_value=EPOCH),  # noqa: B008 - dlt's own idiom
) -> Iterator[Any]:
    yield api.fetch_orders(updated_since=updated_at.start_value)


# buggy: append with an incremental cursor (the dlt-hub/dlt#4052 shape): the cursor
# advances only when the state row's load is recorded in _dlt_loads; a run that dies
# after its rows were inserted and before that, retried on a fresh worker, appends them again
@dlt.resource(name="events", write_disposition="append")
def events_append(
    event_time: dlt.sources.incremental[datetime] = dlt.sources.incremental("event_time", initial_value=EPOCH),  # noqa: B008 - dlt's own idiom
) -> Iterator[Any]:
    yield api.fetch_events(after=event_time.start_value)


# buggy on DuckDB (in dlt, not in this code): the default merge strategy, delete-insert,
# runs its DELETE and INSERT as separate autocommitted statements there (dlt 1.31 leaves
# `supports_transactions` unset and its DuckDB client executes a script statement by
# statement): a load killed between them leaves the merged orders missing until the
# retry, and a reader in between sees them gone. On PostgreSQL the script is one query,
# which PostgreSQL runs as one implicit transaction
@dlt.resource(name="orders", primary_key="order_id", write_disposition="merge")
def orders_delete_insert() -> Iterator[Any]:
    yield api.fetch_orders()
