-- buggy: delete+insert keyed on the run's time (dbt's run_started_at) instead of
-- the order: each run deletes only the batch it is about to write, so a retry or
-- a duplicate run of a window inserts its orders a second time
{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key='batch_at') }}

select order_id, customer_id, status, amount, updated_at,
       cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S") }}' as timestamp) as batch_at
from {{ ref('stg_orders') }}
{% if is_incremental() %}
where updated_at >= cast('{{ var("window_start") }}' as timestamp) - interval '{{ var("lookback_hours", 2) }} hours'
  and updated_at < '{{ var("window_end") }}'
{% endif %}
