delete from products_sales where "purchase_date"::text = '{{ ds }}'
