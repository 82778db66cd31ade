-- staging view: built before each incremental model (`dbt run -s +model`)
select order_id, customer_id, lower(status) as status, amount, updated_at
from {{ source('shop', 'orders') }}
