"""How fast can a PostgreSQL sandbox be reset? Prints ms per reset (median of N) per approach.

    python bench/pg_reset.py [--dsn postgresql://postgres@127.0.0.1:5432/postgres] [-n 20]

Every check example needs two fresh sandboxes holding the spec's setup DDL, so
this is the per-sandbox price of each way to get one:

  fresh+ddl     CREATE DATABASE (from template1) + run the setup DDL, DROP after use
  clone         CREATE DATABASE … TEMPLATE <db where the setup ran once>, DROP after use
  clone-fc      the same with STRATEGY = FILE_COPY (checkpoints instead of WAL)
  schema        one database, CREATE SCHEMA per sandbox + DDL with every schema name
                rewritten (src.orders -> s7_src.orders), DROP SCHEMA … CASCADE after use
  truncate      a pooled database: TRUNCATE every table RESTART IDENTITY + a catalog
                fingerprint query to detect DDL the load did (then drop+clone instead)
  pool          what idemtest does: PostgresBackend.create(spec) + close(), clones
                made and dropped by a background thread (harness-visible latency)

Only databases named idemtest_* are created, and all are dropped at the end.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg

from idemtest.sandbox.postgres import PostgresBackend, make_url, parse_dsn, split_sql

SETUP = """
CREATE SCHEMA src; CREATE SCHEMA analytics;
CREATE TABLE src.orders(order_id BIGINT, status VARCHAR, amount DECIMAL(12,2), updated_at TIMESTAMP);
CREATE TABLE src.customers(customer_id BIGSERIAL PRIMARY KEY, name VARCHAR, city VARCHAR);
CREATE TABLE analytics.orders(order_id BIGINT PRIMARY KEY, status VARCHAR, amount DECIMAL(12,2), updated_at TIMESTAMP, loaded_at TIMESTAMP);
CREATE SCHEMA _idemtest; CREATE TABLE _idemtest.state (key VARCHAR PRIMARY KEY, value VARCHAR);
"""

# DDL the load might have done shows up here: relations, columns, view text, functions, triggers
FINGERPRINT = """
SELECT md5(coalesce(string_agg(x, ';' ORDER BY x), '')) FROM (
  SELECT n.nspname || '.' || c.relname || ':' || c.relkind::text || ':' ||
         coalesce((SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod), ',' ORDER BY a.attnum)
                   FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '') ||
         CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) ELSE '' END AS x
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'
  UNION ALL
  SELECT 'f:' || p.oid::regprocedure::text || md5(p.prosrc) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
  WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
  UNION ALL
  SELECT 't:' || tgrelid::regclass::text || tgname FROM pg_trigger WHERE NOT tgisinternal
) s
"""

TRUNCATE = """
DO $$ DECLARE r record; BEGIN
  EXECUTE (SELECT 'TRUNCATE ' || string_agg(format('%I.%I', schemaname, tablename), ', ') || ' RESTART IDENTITY CASCADE'
           FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema'));
END $$
"""


def use(conn: psycopg.Connection, schema_prefix: str = "") -> None:
    """What one run does to a sandbox: 3,000 source rows, an upsert into the target."""
    src, tgt = f"{schema_prefix}src.orders", f"{schema_prefix}analytics.orders"
    with conn.cursor() as cur:
        with cur.copy(f"COPY {src} FROM STDIN") as cp:
            for i in range(3000):
                cp.write_row((i, "new", i * 1.5, "2026-06-01 00:00:00"))
        cur.execute(f"INSERT INTO {tgt} SELECT *, now() FROM {src} ON CONFLICT (order_id) DO NOTHING")
    conn.commit()


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("-n", type=int, default=20, help="resets per approach (default 20)")
    args = ap.parse_args()
    n = args.n

    be = PostgresBackend(args.dsn, background=False, pool_size=0)  # for names and cleanup only
    admin = be.admin
    params = parse_dsn(args.dsn)

    def dsn_of(db: str) -> str:
        return make_url({**params, "dbname": db})

    def ddl(db: str, text: str) -> None:
        with psycopg.connect(dsn_of(db), autocommit=True) as c:
            for s in split_sql(text):
                c.execute(s)

    results: dict[str, tuple[float, float, str]] = {}

    def measure(label: str, make: Callable[[], str], drop: Callable[[str], None], note: str, connect_db: Callable[[str], str] | None = None) -> None:
        made, dropped = [], []
        for _ in range(n):
            t0 = time.perf_counter()
            db = make()
            made.append(time.perf_counter() - t0)
            with psycopg.connect(dsn_of(connect_db(db) if connect_db else db)) as c:
                use(c, db + "_" if connect_db else "")
            t0 = time.perf_counter()
            drop(db)
            dropped.append(time.perf_counter() - t0)
        results[label] = (median_ms(made), median_ms(dropped), note)

    # fresh database + DDL
    def fresh() -> str:
        name = be._new_name("b")
        be._create_db(name, None)
        ddl(name, SETUP)
        return name

    measure("fresh+ddl", fresh, be._drop_db, "CREATE DATABASE + setup DDL; DROP")

    # template clone
    tpl = be._new_name("t")
    be._create_db(tpl, None)
    ddl(tpl, SETUP)

    def clone(strategy: str = "") -> str:
        name = be._new_name("c")
        be._created.add(name)
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{tpl}"{strategy}')
        return name

    measure("clone", clone, be._drop_db, "CREATE DATABASE … TEMPLATE (WAL_LOG); DROP … WITH (FORCE)")
    measure("clone-fc", lambda: clone(" STRATEGY = FILE_COPY"), be._drop_db, "same, STRATEGY = FILE_COPY")

    # schema per sandbox, names rewritten; one shared database
    shared = be._new_name("h")
    be._create_db(shared, None)
    shared_conn = psycopg.connect(dsn_of(shared), autocommit=True)
    counter = iter(range(10**6))

    def schema_make() -> str:
        p = f"s{next(counter)}"
        text = SETUP.replace("SCHEMA src", f"SCHEMA {p}_src").replace("SCHEMA analytics", f"SCHEMA {p}_analytics")
        text = text.replace("SCHEMA _idemtest", f"SCHEMA {p}__idemtest").replace("src.", f"{p}_src.")
        text = text.replace("analytics.", f"{p}_analytics.").replace("_idemtest.", f"{p}__idemtest.")
        for s in split_sql(text):
            shared_conn.execute(s)
        return p

    def schema_drop(p: str) -> None:
        shared_conn.execute(f"DROP SCHEMA {p}_src, {p}_analytics, {p}__idemtest CASCADE")

    measure("schema", schema_make, schema_drop, "CREATE SCHEMA ×3 + rewritten DDL; DROP SCHEMA … CASCADE", connect_db=lambda p: shared)
    shared_conn.close()

    # truncate-based reset of a pooled database
    pooled = clone()
    with psycopg.connect(dsn_of(tpl)) as rc:
        reference = rc.execute(FINGERPRINT).fetchone()
    pconn = psycopg.connect(dsn_of(pooled), autocommit=True)

    def truncate_reset(db: str) -> None:
        fp = pconn.execute(FINGERPRINT).fetchone()
        if fp != reference:  # the load changed the schema: this database cannot be reused
            raise SystemExit("fingerprint changed unexpectedly")
        pconn.execute(TRUNCATE)

    measure("truncate", lambda: pooled, truncate_reset, "fingerprint check + TRUNCATE all RESTART IDENTITY (reuse)")
    pconn.close()

    # what idemtest does: the backend's pool with background clone/drop
    from idemtest import Source, Spec, Target, hourly

    spec = Spec(
        setup=SETUP.replace("CREATE SCHEMA _idemtest; CREATE TABLE _idemtest.state (key VARCHAR PRIMARY KEY, value VARCHAR);", ""),
        sources=[Source("src.orders", columns={"order_id": "BIGINT", "status": "VARCHAR", "amount": "DECIMAL(12,2)", "updated_at": "TIMESTAMP"}, key="order_id", event_time="updated_at")],
        targets=[Target("analytics.orders", key="order_id", ignore=["loaded_at"])],
        schedule=hourly("2026-06-01", periods=2),
    )
    pool = PostgresBackend(args.dsn, pool_size=2, sweep=False)
    try:
        pool.create(spec).close()  # builds the template
        time.sleep(0.5)
        made, closed = [], []
        for _ in range(n):
            for _ in range(2):  # scenario + clean run
                t0 = time.perf_counter()
                sb = pool.create(spec)
                made.append(time.perf_counter() - t0)
                with psycopg.connect(sb.dsn) as c:
                    use(c)
                t0 = time.perf_counter()
                sb.close()
                closed.append(time.perf_counter() - t0)
        results["pool"] = (median_ms(made), median_ms(closed), "PostgresBackend.create(spec)/close(): background clone + drop")
    finally:
        pool.close()
        be.close()

    print(f"PostgreSQL {be.server_version} at {be.describe().split(' at ', 1)[1]}; median of {n}, ms per sandbox")
    print(f"{'approach':<11} {'get':>8} {'reset':>8} {'total':>8}  how")
    for label, (a, b, note) in results.items():
        print(f"{label:<11} {a:8.1f} {b:8.1f} {a + b:8.1f}  {note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
