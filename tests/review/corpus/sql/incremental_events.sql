-- Hourly incremental load of click events.

INSERT INTO analytics.click_events (event_id, user_id, url, event_ts)
SELECT event_id, user_id, url, event_ts
FROM raw.click_events
WHERE event_ts > (SELECT max(event_ts) FROM analytics.click_events);  -- expect: IDM402, IDM403

INSERT INTO analytics.sessions (session_id, user_id, started_at)  -- expect: IDM201
VALUES (:session_id, :user_id, :started_at);

UPDATE etl_watermarks  -- expect: IDM401
SET high_water = CURRENT_TIMESTAMP
WHERE job_name = 'click_events';
