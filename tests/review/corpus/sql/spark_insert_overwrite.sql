-- idemtest: dialect=spark
-- Correct: a partition overwrite is atomic and idempotent.
INSERT OVERWRITE TABLE analytics.page_views PARTITION (view_date = '${run_date}')
SELECT view_id, user_id, url
FROM raw.page_views
WHERE view_date = '${run_date}';

INSERT INTO analytics.daily_view_counts  -- expect: IDM201
SELECT view_date, count(*) FROM raw.page_views WHERE view_date = '${run_date}' GROUP BY view_date;
