-- idemtest: dialect=bigquery
-- Correct: replace one partition atomically in BigQuery scripting.
BEGIN TRANSACTION;
DELETE FROM `proj.analytics.events_daily` WHERE event_date = @run_date;
INSERT INTO `proj.analytics.events_daily` (event_date, event_name, users)
SELECT event_date, event_name, COUNT(DISTINCT user_id)
FROM `proj.raw.events`
WHERE event_date = @run_date
GROUP BY event_date, event_name;
COMMIT TRANSACTION;
