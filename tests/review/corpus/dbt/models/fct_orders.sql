{{ config(materialized='incremental', on_schema_change='append_new_columns') }}  -- expect: IDM601

with orders as (
    select * from {{ ref('stg_orders') }}
),

payments as (
    select order_id, sum(amount) as amount
    from {{ ref('stg_payments') }}
    group by 1
)

select
    orders.order_id,
    orders.customer_id,
    orders.status,
    payments.amount,
    orders.updated_at
from orders
left join payments using (order_id)

{% if is_incremental() %}
where orders.updated_at > (select max(updated_at) from {{ this }})  -- expect: IDM402, IDM403
{% endif %}
