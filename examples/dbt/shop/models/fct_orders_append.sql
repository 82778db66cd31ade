-- buggy: append incremental keyed on nothing; a retry or a duplicate run of
-- the same window inserts its rows again
{{ config(materialized='incremental', incremental_strategy='append') }}

select order_id, customer_id, status, amount, updated_at
from {{ ref('stg_orders') }}
{% if is_incremental() %}
where updated_at >= '{{ var("window_start") }}' and updated_at < '{{ var("window_end") }}'
{% endif %}
