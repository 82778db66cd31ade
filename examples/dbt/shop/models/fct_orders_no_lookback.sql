-- buggy: the classic `> max(updated_at)` cursor without a lookback: a row that
-- lands late, with an event time older than the newest loaded row, is never loaded
{{ config(materialized='incremental', incremental_strategy='merge', unique_key='order_id') }}

select order_id, customer_id, status, amount, updated_at
from {{ ref('stg_orders') }}
{% if is_incremental() %}
where updated_at > (select coalesce(max(updated_at), cast('1900-01-01' as timestamp)) from {{ this }})
{% endif %}
