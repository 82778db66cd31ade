-- staging view of the order-event log; `event_time` lets dbt filter it per microbatch
{{ config(event_time='event_time') }}
select event_id, order_id, lower(event_type) as event_type, amount, event_time
from {{ source('shop', 'events') }}
