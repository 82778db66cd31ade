-- correct: merge on the key, re-reading a lookback of max_lateness behind the
-- newest row already loaded, so late rows and updates are picked up
{{ config(materialized='incremental', incremental_strategy='merge', unique_key='order_id') }}

select order_id, customer_id, status, amount, updated_at
from {{ ref('stg_orders') }}
{% if is_incremental() %}
where updated_at >= (select coalesce(max(updated_at), cast('1900-01-01' as timestamp)) from {{ this }}) - interval '{{ var("lookback_hours", 2) }} hours'
{% endif %}
