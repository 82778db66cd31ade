{{ config(materialized='incremental', unique_key='customer_id', incremental_strategy='merge') }}

select
    c.customer_id,
    c.email,
    c.country,
    c.updated_at
from {{ source('shop', 'customers') }} as c

{% if is_incremental() %}
  -- three days of lookback; the merge on customer_id makes the overlap harmless
  where c.updated_at >= (select max(updated_at) - interval '3 days' from {{ this }})
{% else %}
  where c.updated_at >= '{{ var("start_date", "2020-01-01") }}'
{% endif %}
