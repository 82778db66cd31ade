{{ config(materialized='incremental', unique_key='view_id', incremental_strategy='append') }}  -- expect: IDM601

select view_id, user_id, url, viewed_at
from {{ ref('stg_page_views') }}
{% if is_incremental() %}
where viewed_at >= (select max(viewed_at) - interval '1 hour' from {{ this }})
{% endif %}
