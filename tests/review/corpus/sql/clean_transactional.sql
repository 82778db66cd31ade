-- Correct: the day is replaced inside one transaction; dims are swapped atomically.

BEGIN;
DELETE FROM analytics.fact_orders WHERE order_date = :run_date;
INSERT INTO analytics.fact_orders (order_id, customer_id, order_date, amount)
SELECT order_id, customer_id, order_date, amount
FROM raw.orders
WHERE order_date = :run_date;
UPDATE etl_state SET last_value = (SELECT max(order_date) FROM analytics.fact_orders) WHERE job = 'orders';
COMMIT;

CREATE OR REPLACE TABLE analytics.dim_product AS
SELECT product_id, name, category FROM raw.products;

MERGE INTO analytics.customers AS t
USING (
  SELECT customer_id, email, updated_at
  FROM raw.customers
  WHERE updated_at >= (SELECT max(updated_at) FROM analytics.customers) - INTERVAL '2 hours'
) AS s
ON t.customer_id = s.customer_id
WHEN MATCHED AND s.updated_at > t.updated_at THEN UPDATE SET email = s.email, updated_at = s.updated_at
WHEN NOT MATCHED THEN INSERT (customer_id, email, updated_at) VALUES (s.customer_id, s.email, s.updated_at);
