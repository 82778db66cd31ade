"""Nightly DuckDB loader for landing files (autocommit: every execute commits)."""

import duckdb

DB = "/data/warehouse.duckdb"


def load_orders_daily(path: str) -> None:
    con = duckdb.connect(DB)
    con.execute("TRUNCATE orders_daily")  # expect: IDM301
    con.execute("INSERT INTO orders_daily SELECT * FROM read_parquet(?)", [path])
    con.close()


def load_events(landing_glob: str) -> None:
    con = duckdb.connect(DB)
    con.execute("UPDATE etl_state SET last_loaded_at = now() WHERE job = 'events'")  # expect: IDM401, IDM404
    con.execute(f"COPY events FROM '{landing_glob}' (FORMAT csv, HEADER)")  # expect: IDM201
    con.close()


def rebuild_country_dim() -> None:
    con = duckdb.connect(DB)
    con.execute("DROP TABLE IF EXISTS dim_country")  # expect: IDM301
    con.execute("CREATE TABLE dim_country AS SELECT DISTINCT country_code, country_name FROM raw_countries")
    con.close()
