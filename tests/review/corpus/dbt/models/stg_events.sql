{{ config(materialized='view') }}

{%- set event_types = ['page_view', 'click', 'purchase'] -%}

select
    event_id,
    user_id,
    event_type,
    cast(event_ts as timestamp) as event_ts
from {{ source('web', 'events') }}
where event_type in (
    {%- for t in event_types %}
    '{{ t }}'{% if not loop.last %},{% endif %}
    {%- endfor %}
)
