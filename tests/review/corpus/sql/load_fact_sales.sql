-- Nightly job: rebuild yesterday's sales. Run with `psql -f` (autocommit per statement).

DELETE FROM analytics.fact_sales  -- expect: IDM301
WHERE sale_date = CURRENT_DATE - 1;

INSERT INTO analytics.fact_sales (sale_id, store_id, sale_date, amount)
SELECT s.sale_id, s.store_id, s.sale_date, s.amount
FROM raw.sales s
WHERE s.sale_date = CURRENT_DATE - 1;  -- expect: IDM501

INSERT INTO analytics.sales_audit (run_at, row_count)
SELECT now(), count(*) FROM analytics.fact_sales WHERE sale_date = CURRENT_DATE - 1;  -- expect: IDM501
