insert into products_sales select * from stg_purchases
