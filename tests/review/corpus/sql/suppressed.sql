-- A known append the team accepted: rows carry a run id and are deduplicated downstream.
-- idemtest: ignore[IDM201]
INSERT INTO analytics.raw_clicks SELECT * FROM landing.clicks WHERE batch = :batch;
INSERT INTO analytics.raw_views SELECT * FROM landing.views WHERE batch = :batch;  -- idemtest: ignore[IDM201]
