-- correct: microbatch (dbt >= 1.9) of hourly batches by event time. Each batch is
-- replaced whole, and every run also redoes the batch before it (lookback=1), so
-- an event that lands up to an hour late is picked up by the next scheduled run.
-- unique_key: dbt-postgres 1.11 requires one for microbatch (it merges each batch),
-- dbt-duckdb 1.11 refuses one (it deletes and inserts each batch by event_time)
{{ config(
    materialized='incremental',
    incremental_strategy='microbatch',
    event_time='event_time',
    batch_size='hour',
    begin='2026-06-01',
    lookback=1,
    unique_key=('event_id' if target.type == 'postgres' else none),
) }}

select event_id, order_id, event_type, amount, event_time
from {{ ref('stg_events') }}
