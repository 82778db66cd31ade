"""Small targeted snippets: one behaviour per case, beyond the corpus."""

from __future__ import annotations

from pathlib import Path

import pytest

from idemtest.review import review_paths


def rules_for(tmp_path: Path, name: str, text: str) -> list[tuple[int, str]]:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    result = review_paths([p])
    assert not result.skipped, result.skipped
    return sorted((f.line, f.rule_id) for f in result.findings)


@pytest.mark.parametrize(
    ("sql", "want"),
    [
        ("INSERT INTO t SELECT * FROM s;", [(1, "IDM201")]),
        ("INSERT INTO t SELECT * FROM s ON CONFLICT (id) DO UPDATE SET v = excluded.v;", []),
        ("INSERT INTO t SELECT * FROM s WHERE NOT EXISTS (SELECT 1 FROM t x WHERE x.id = s.id);",
         []),
        ("INSERT INTO tmp_orders SELECT * FROM s;", []),
        ("INSERT INTO job_log VALUES (1, now());", []),
        ("BEGIN; DELETE FROM t WHERE d = :d; INSERT INTO t SELECT * FROM s WHERE d = :d; COMMIT;",
         []),
        ("DELETE FROM t WHERE d = :d;\nINSERT INTO t SELECT * FROM s WHERE d = :d;",
         [(1, "IDM301")]),
        ("DELETE FROM t WHERE created < now() - interval '90 days';", []),
        ("TRUNCATE t;\nINSERT INTO t SELECT * FROM s;", [(1, "IDM301")]),
        ("INSERT INTO t SELECT * FROM s WHERE ts > now() - interval '1 hour';",
         [(1, "IDM201"), (1, "IDM401")]),
        ("SELECT * FROM s WHERE ts >= current_date - 1 AND ts < current_date;", [(1, "IDM501")]),
        ("SELECT * FROM s WHERE ts >= :start AND ts < :end;", []),
        ("SELECT * FROM s WHERE ts >= (SELECT max(ts) FROM t);", [(1, "IDM402")]),
        ("SELECT * FROM s WHERE ts > (SELECT max(ts) FROM t);", [(1, "IDM402"), (1, "IDM403")]),
        ("SELECT * FROM s WHERE ts > (SELECT max(ts) - interval '1 hour' FROM t);", []),
        ("MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET v = s.v;", []),
        ("MERGE INTO t USING s ON t.id = s.id AND t.status = s.status "
         "WHEN MATCHED THEN UPDATE SET v = s.v;", [(1, "IDM205")]),
        ("MERGE INTO t USING s ON t.id = s.id AND t.v = s.v "
         "WHEN MATCHED THEN UPDATE SET v = s.v;", [(1, "IDM205")]),
        ("INSERT INTO t (id, updated_at) VALUES (1, 2) ON CONFLICT DO NOTHING;",
         [(1, "IDM204")]),
        ("INSERT INTO t (id, name) VALUES (1, 2) ON CONFLICT DO NOTHING;", []),
        ("UPDATE sync_state SET cursor_value = now();", [(1, "IDM401")]),
        ("UPDATE load_state SET v = 1;\nINSERT INTO t SELECT * FROM s;",
         [(1, "IDM404"), (2, "IDM201")]),
        ("COPY t FROM '/data/x.csv' (FORMAT csv);", [(1, "IDM201")]),
        ("DROP TABLE t;\nCREATE TABLE t AS SELECT * FROM s;", [(1, "IDM301")]),
        ("DROP TABLE IF EXISTS t_old;", []),
    ],
)
def test_sql_snippets(tmp_path: Path, sql: str, want: list[tuple[int, str]]) -> None:
    assert rules_for(tmp_path, "x.sql", sql + "\n") == want


@pytest.mark.parametrize(
    ("code", "want"),
    [
        ("def f(cur):\n    cur.execute(f'INSERT INTO {target} SELECT * FROM src')\n",
         [(2, "IDM201")]),
        ("def f(conn, day):\n    with conn.transaction():\n"
         "        conn.execute('DELETE FROM t WHERE d = %s', (day,))\n"
         "        conn.execute('INSERT INTO t SELECT * FROM s WHERE d = %s', (day,))\n", []),
        ("def f(conn, day):\n    conn.execute('DELETE FROM t WHERE d = %s', (day,))\n"
         "    conn.commit()\n"
         "    conn.execute('INSERT INTO t SELECT * FROM s WHERE d = %s', (day,))\n",
         [(2, "IDM301")]),
        ("import time\ndef f():\n    watermark = time.time()\n", [(3, "IDM401")]),
        ("from datetime import datetime\ndef f(conn):\n    now = datetime.now()\n"
         "    save_watermark(conn, now)\n", [(4, "IDM401")]),
        ("from datetime import date\ndef f(day=None):\n    day = day or date.today()\n", []),
        ("from datetime import date\ndef f():\n    run_date = date.today()\n",
         [(3, "IDM501")]),
        ("def f(df, engine):\n    df.to_sql('stg_orders', engine, if_exists='replace')\n", []),
        ("def f(df, engine, since):\n    df.to_sql('orders', engine, if_exists='replace')\n",
         [(2, "IDM203")]),
        ("def f(df, engine):\n    df.to_sql('orders', engine, if_exists='append', "
         "method=upsert)\n", []),
        ("def f(df, engine, conn):\n    df.to_sql('stage_o', engine, if_exists='append')\n"
         "    conn.execute('MERGE INTO o USING stage_o s ON o.id = s.id "
         "WHEN MATCHED THEN UPDATE SET v = s.v')\n", []),
        ("SQL = 'INSERT INTO t SELECT * FROM s'\n\ndef f(cur):\n    cur.execute(SQL)\n",
         [(1, "IDM201")]),
        ("def f(cur):\n    cur.execute('DELETE FROM t')  # drop the rows\n", []),
        ("def f():\n    '''Delete from the table the rows we no longer want.'''\n", []),
    ],
)
def test_python_snippets(tmp_path: Path, code: str, want: list[tuple[int, str]]) -> None:
    assert rules_for(tmp_path, "x.py", code) == want


@pytest.mark.parametrize(
    ("code", "want"),
    [
        ("from airflow import DAG\nwith DAG('d', catchup=False, max_active_runs=1,\n"
         "         default_args={'retries': 2, 'retry_delay': 60}):\n    pass\n", []),
        ("from airflow import DAG\nwith DAG('d', catchup=False, max_active_runs=1,\n"
         "         default_args={'retries': 50, 'retry_delay': 60, 'start_date': START}):\n"
         "    pass\n",
         [(3, "IDM103")]),
        ("from airflow import DAG\ndag = DAG('d', catchup=False, max_active_runs=1, start_date=START)\n",
         [(2, "IDM103")]),
        ("from prefect import task\n@task(retries=-1, retry_delay_seconds=5)\ndef t():\n"
         "    pass\n", [(2, "IDM103")]),
    ],
)
def test_orchestration_snippets(tmp_path: Path, code: str, want: list[tuple[int, str]]) -> None:
    assert rules_for(tmp_path, "dag.py", code) == want


@pytest.mark.parametrize(
    ("line", "want"),
    [
        ("0 * * * * /opt/load.sh", [(1, "IDM106")]),
        ("0 * * * * flock -n /tmp/l /opt/load.sh", []),
        ("@hourly /opt/load.sh", [(1, "IDM106")]),
        ("# 0 * * * * /opt/load.sh", []),
        ("MAILTO=a@b.c", []),
    ],
)
def test_cron_lines(tmp_path: Path, line: str, want: list[tuple[int, str]]) -> None:
    d = tmp_path / "cron.d"
    d.mkdir()
    assert rules_for(d, "etl", line + "\n") == want


# ---- issue 12: classes seen on real code ---------------------------------------------------

_DAG = ("from airflow import DAG\nfrom airflow.operators.bash import BashOperator\n"
        "with DAG('d', {args}):\n    BashOperator(task_id='t', bash_command={cmd!r})\n")


@pytest.mark.parametrize(
    ("args", "cmd", "want"),
    [
        # scheduled and writing: hygiene applies
        ("schedule='@daily'", "python load.py", [(3, "IDM101"), (3, "IDM102"), (3, "IDM103")]),
        # no schedule given is Airflow 2's daily (from the start date: without one it never runs)
        ("catchup=False, start_date=START", "python load.py", [(3, "IDM102"), (3, "IDM103")]),
        ("catchup=False", "python load.py", []),
        # manual or one-off DAGs are never caught up or overlapped by the scheduler
        ("schedule=None", "python load.py", []),
        ("schedule_interval='@once'", "python load.py", []),
        ("schedule='@daily' if ENV == 'prod' else None", "python load.py",
         [(3, "IDM101"), (3, "IDM102"), (3, "IDM103")]),
        ("schedule=None if ENV == 'dev' else None", "python load.py", []),
        # a DAG whose tasks only echo writes nothing
        ("schedule='@daily'", "echo hello", []),
    ],
)
def test_dag_hygiene_only_on_scheduled_dags_that_write(
        tmp_path: Path, args: str, cmd: str, want: list[tuple[int, str]]) -> None:
    assert rules_for(tmp_path, "dag.py", _DAG.format(args=args, cmd=cmd)) == want


@pytest.mark.parametrize(
    ("code", "want"),
    [
        ("from airflow import DAG\nfrom airflow.operators.empty import EmptyOperator\n"
         "with DAG('d', schedule='@hourly'):\n    EmptyOperator(task_id='start')\n", []),
        ("from airflow.decorators import dag, task\n@dag(schedule='@daily')\ndef d():\n"
         "    @task\n    def hello():\n        print('hi')\n    hello()\n", []),
        ("from airflow.decorators import dag, task\n@dag(schedule='@daily')\ndef d():\n"
         "    @task\n    def load():\n        run_load()\n    load()\n",
         [(2, "IDM101"), (2, "IDM102"), (2, "IDM103")]),
    ],
)
def test_dags_that_write_nothing(tmp_path: Path, code: str, want: list[tuple[int, str]]) -> None:
    assert rules_for(tmp_path, "dag.py", code) == want


def test_catchup_in_default_args_and_start_date_constant(tmp_path: Path) -> None:
    code = ("from airflow import DAG\nfrom airflow.utils.dates import days_ago\n"
            "START = days_ago(1)\n"
            "args = {'start_date': START, 'catchup': False, 'retries': 1}\n"
            "dag = DAG('d', default_args=args, schedule='@daily', max_active_runs=1)\n"
            "dag2 = DAG('e', default_args=args, schedule=None, max_active_runs=1)\n")
    got = rules_for(tmp_path, "dag.py", code)
    # catchup in default_args is ignored (IDM108) so the DAG keeps the default (IDM101);
    # START moves each parse (IDM105). The unscheduled DAG gets only IDM108.
    assert got == [(4, "IDM105"), (4, "IDM108"), (4, "IDM108"), (5, "IDM101")] or \
        sorted(set(got)) == [(4, "IDM105"), (4, "IDM108"), (5, "IDM101")]


def test_airflow_retries_without_delay_use_the_default_delay(tmp_path: Path) -> None:
    code = ("from airflow import DAG\nwith DAG('d', schedule='@daily', catchup=False,\n"
            "         max_active_runs=1, default_args={'retries': 2}):\n    pass\n")
    assert rules_for(tmp_path, "dag.py", code) == []


@pytest.mark.parametrize(
    ("code", "want"),
    [
        # Dagster's DuckDBResource hands out an autocommit DuckDB connection
        ("from dagster_duckdb import DuckDBResource\n"
         "def asset(database: DuckDBResource, month):\n"
         "    with database.get_connection() as conn:\n"
         "        conn.execute(f\"delete from trips where m = '{month}'\")\n"
         "        conn.execute(f\"insert into trips select * from read_csv('{month}.csv')\")\n",
         [(4, "IDM301")]),
        ("from dagster_duckdb import DuckDBResource\n"
         "def asset(database: DuckDBResource, month):\n"
         "    with database.get_connection() as conn:\n"
         "        conn.execute('begin')\n"
         "        conn.execute(f\"delete from trips where m = '{month}'\")\n"
         "        conn.execute(f\"insert into trips select * from read_csv('{month}.csv')\")\n"
         "        conn.execute('commit')\n", []),
        # COPY with a column list is SQL too
        ("def load(cur):\n    cur.execute(\"COPY sales (id, amount) FROM '/d/sales.csv' CSV\")\n",
         [(2, "IDM201")]),
        # "...".format(args): the table is named after the argument
        ("def load(cur, temp_table):\n"
         "    cur.execute('COPY {} (a, b) FROM STDIN'.format(temp_table))\n", []),
        ("def load(cur, table):\n"
         "    cur.execute('COPY {} (a, b) FROM STDIN'.format(table))\n", [(2, "IDM201")]),
        # to_sql replace then append of the same table rebuilds it: no duplicate, no loss
        ("def load(chunks, engine, since):\n    first = next(chunks)\n"
         "    first.head(0).to_sql('trips', engine, if_exists='replace')\n"
         "    for df in chunks:\n        df.to_sql('trips', engine, if_exists='append')\n", []),
        ("def load(df, engine, since):\n    df.to_sql('trips', engine, if_exists='append')\n",
         [(2, "IDM202")]),
    ],
)
def test_loads_on_real_patterns(tmp_path: Path, code: str, want: list[tuple[int, str]]) -> None:
    assert rules_for(tmp_path, "x.py", code) == want


@pytest.mark.parametrize(
    ("code", "want"),
    [
        ("from airflow.providers.postgres.hooks.postgres import PostgresHook\n"
         "def load(rows):\n    hook = PostgresHook('dwh')\n"
         "    hook.run('TRUNCATE TABLE analytics.orders')\n"
         "    hook.insert_rows('analytics.orders', rows, commit_every=1000)\n",
         [(4, "IDM301")]),
        ("from airflow.providers.postgres.hooks.postgres import PostgresHook\n"
         "def load(rows):\n    PostgresHook('dwh').insert_rows('analytics.orders', rows)\n",
         [(3, "IDM201")]),
        # a generic operator runs the caller's pre-SQL first: it may clear the target
        ("from airflow.providers.postgres.hooks.postgres import PostgresHook\n"
         "class Op:\n    def execute(self, rows):\n        hook = PostgresHook('dwh')\n"
         "        hook.run(self.pre_sql)\n        hook.insert_rows(self.table, rows)\n", []),
        ("from airflow.providers.postgres.hooks.postgres import PostgresHook\n"
         "def load(rows):\n    PostgresHook('dwh').insert_rows('orders', rows, replace=True,\n"
         "        replace_index='id')\n", []),
        # one run() with both statements is one transaction
        ("from airflow.providers.postgres.hooks.postgres import PostgresHook\n"
         "def load(day):\n    hook = PostgresHook('dwh')\n"
         "    hook.run(['DELETE FROM f WHERE d = %(d)s',\n"
         "              'INSERT INTO f SELECT * FROM s WHERE d = %(d)s'], parameters={'d': day})\n",
         []),
        ("from airflow.providers.postgres.hooks.postgres import PostgresHook\n"
         "def load(day):\n    hook = PostgresHook('dwh')\n"
         "    hook.run('DELETE FROM f WHERE d = %(d)s', parameters={'d': day})\n"
         "    hook.run('INSERT INTO f SELECT * FROM s WHERE d = %(d)s', parameters={'d': day})\n",
         [(4, "IDM301")]),
    ],
)
def test_airflow_hooks(tmp_path: Path, code: str, want: list[tuple[int, str]]) -> None:
    assert rules_for(tmp_path, "x.py", code) == want


@pytest.mark.parametrize(
    ("code", "want"),
    [
        ("import logging\ndef load(cur):\n    try:\n"
         "        cur.execute('INSERT INTO t SELECT * FROM s ON CONFLICT (id) DO NOTHING')\n"
         "    except Exception:\n        logging.exception('load failed')\n", [(5, "IDM206")]),
        ("def load(df, engine):\n    try:\n        df.to_sql('t', engine, if_exists='replace')\n"
         "    except:\n        pass\n", [(4, "IDM206")]),
        ("def load(df, engine):\n    try:\n        df.to_sql('t', engine, if_exists='replace')\n"
         "    except Exception as e:\n        log(e)\n        raise\n", []),
        ("def load(df, engine):\n    try:\n        df.to_sql('t', engine, if_exists='replace')\n"
         "    except ValueError:\n        return None\n", []),
        # a read wrapped in a broad except is not a load
        ("def read(cur):\n    try:\n        cur.execute('SELECT max(ts) FROM t')\n"
         "    except Exception:\n        return None\n", []),
    ],
)
def test_swallowed_load_errors(tmp_path: Path, code: str, want: list[tuple[int, str]]) -> None:
    assert rules_for(tmp_path, "x.py", code) == want


@pytest.mark.parametrize(
    ("code", "want"),
    [
        ("import dlt\n@dlt.resource\ndef rows():\n    yield from api()\n", [(2, "IDM201")]),
        ("import dlt\n@dlt.resource(name='r', write_disposition='append')\ndef rows():\n"
         "    yield from api()\n", [(2, "IDM201")]),
        ("import dlt\n@dlt.resource(write_disposition='merge', primary_key='id')\ndef rows():\n"
         "    yield from api()\n", []),
        ("import dlt\n@dlt.resource(write_disposition='replace')\ndef rows():\n"
         "    yield from api()\n", []),
        ("import dlt\n@dlt.resource\ndef rows():\n    yield from api()\n"
         "dlt.pipeline('p').run(rows(), write_disposition='replace')\n", []),
        # a plain generator returned by a source is a resource on the default append
        ("import dlt\n@dlt.source\ndef src(path):\n    def rows():\n"
         "        yield from read(path)\n    return rows\n", [(4, "IDM201")]),
        ("import dlt\n@dlt.source\ndef src(path):\n    def helper():\n"
         "        return 1\n    return dlt.resource(read(path), write_disposition='replace')\n",
         []),
    ],
)
def test_dlt_write_dispositions(tmp_path: Path, code: str, want: list[tuple[int, str]]) -> None:
    assert rules_for(tmp_path, "x.py", code) == want


@pytest.mark.parametrize(
    ("sql", "want"),
    [
        # the incremental branch is reviewed too (is_incremental() evaluated as true)
        ("{{ config(materialized='incremental', unique_key='id') }}\nselect * from s\n"
         "{% if not is_incremental() %}\nwhere true\n{% else %}\n"
         "where updated_at > (select max(updated_at) from {{ this }})\n{% endif %}\n",
         [(6, "IDM402"), (6, "IDM403")]),
        # a load-time column only grows with commit order: no lookback needed with `>=`
        ("{{ config(materialized='incremental', unique_key='id') }}\nselect * from s\n"
         "{% if is_incremental() %}\nwhere _loaded_at >= (select max(_loaded_at) from {{ this }})"
         "\n{% endif %}\n", []),
        ("{{ config({'materialized': 'incremental', 'unique_key': ['id']}) }}\nselect * from s\n"
         "{% if is_incremental() %}\nwhere received_at > (select max(received_at) from {{ this }})"
         "\n{% endif %}\n", [(4, "IDM403")]),
        # the dict form of config() is read: no unique_key is IDM601
        ("{{ config({'materialized': 'incremental'}) }}\nselect * from s\n", [(1, "IDM601")]),
        # a script with %(name)s parameters runs through a driver, in one transaction
        ("DELETE FROM f WHERE d = %(day)s;\nINSERT INTO f SELECT * FROM s WHERE d = %(day)s;\n",
         []),
        # a staging table pruned against the target by DELETE ... USING is keyed
        ("CREATE TEMP TABLE m (LIKE dim);\nINSERT INTO m SELECT * FROM stg.c;\n"
         "DELETE FROM m USING dim WHERE m.id = dim.id;\nINSERT INTO dim SELECT * FROM m;\n", []),
        ("COPY sales (id, amount) FROM '/d/sales.csv' CSV;\n", [(1, "IDM201")]),
    ],
)
def test_sql_on_real_patterns(tmp_path: Path, sql: str, want: list[tuple[int, str]]) -> None:
    assert rules_for(tmp_path, "model.sql", sql) == want


@pytest.mark.parametrize(
    ("code", "want"),
    [
        ("from airflow.providers.google.cloud.transfers.gcs_to_bigquery import "
         "GCSToBigQueryOperator\nGCSToBigQueryOperator(task_id='l', bucket='b',\n"
         "    source_objects=['d/{{ ds }}/*.json'], write_disposition='WRITE_APPEND')\n",
         [(3, "IDM201")]),
        ("GCSToBigQueryOperator(task_id='l', bucket='b', source_objects=['x'],\n"
         "    write_disposition='WRITE_TRUNCATE')\n", []),
        ("BigQueryInsertJobOperator(task_id='q', configuration={'query': {\n"
         "    'query': 'SELECT 1', 'writeDisposition': 'WRITE_APPEND'}})\n", [(2, "IDM201")]),
        ("S3ToRedshiftOperator(task_id='l', schema='s', table='t', s3_bucket='b', s3_key='k')\n",
         [(1, "IDM201")]),
        ("S3ToRedshiftOperator(task_id='l', schema='s', table='t', s3_bucket='b', s3_key='k',\n"
         "    method='UPSERT', upsert_keys=['id'])\n", []),
        # delete-then-append: the window is cleared first
        ("BigQueryInsertJobOperator(task_id='d', configuration={'query': {\n"
         "    'query': 'DELETE FROM t WHERE d = \"{{ ds }}\"'}})\n"
         "GCSToBigQueryOperator(task_id='l', bucket='b', source_objects=['x'],\n"
         "    write_disposition='WRITE_APPEND')\n", []),
    ],
)
def test_operator_write_modes(tmp_path: Path, code: str, want: list[tuple[int, str]]) -> None:
    assert rules_for(tmp_path, "dag.py", code) == want


@pytest.mark.parametrize(
    ("name", "sql", "want"),
    [
        # a plain query for rows dated in the future is a data-quality check, not a window
        ("check.sql", "SELECT count(*) FROM orders WHERE order_date > CURRENT_DATE;\n", []),
        ("load.sql", "INSERT INTO t SELECT * FROM s WHERE ts > now();\n",
         [(1, "IDM201"), (1, "IDM401")]),
        # a read-only query over the last hour: a rolling report its runner rebuilds
        # (tests/review/test_rules_rebuild.py has the class)
        ("recent.sql", "SELECT * FROM s WHERE ts > now() - interval '1 hour';\n", []),
        # a window from the current date: IDM501, or IDM503 where the run's date is at hand
        ("day.sql", "SELECT * FROM s WHERE d = current_date - 1;\n", [(1, "IDM501")]),
        ("day_task.sql", "-- run by Airflow for {{ ds }}\n"
         "SELECT * FROM s WHERE d = current_date - 1;\n", [(2, "IDM503")]),
        ("day_ok.sql", "SELECT * FROM s WHERE d = '{{ ds }}';\n", []),
    ],
)
def test_wall_clock_windows(tmp_path: Path, name: str, sql: str,
                            want: list[tuple[int, str]]) -> None:
    assert rules_for(tmp_path, name, sql) == want


def test_wall_clock_window_in_an_airflow_file(tmp_path: Path) -> None:
    code = ("from airflow.providers.postgres.hooks.postgres import PostgresHook\n"
            "def load():\n    PostgresHook('w').run(\n"
            "        'INSERT INTO f SELECT * FROM s WHERE d >= current_date - 1 "
            "AND d < current_date ON CONFLICT (id) DO NOTHING')\n")
    assert rules_for(tmp_path, "dag.py", code) == [(4, "IDM503")]


@pytest.mark.parametrize(
    ("code", "want"),
    [
        # one day's frame replacing the whole table drops every other day
        ("def load(engine, day):\n    df = extract(day)\n"
         "    df.to_sql('daily_sales', engine, if_exists='replace')\n", [(3, "IDM203")]),
        # a table named after the partition holds only that partition
        ("def load(engine, month):\n    df = extract(month)\n"
         "    df.to_sql(f'trips_{month}', engine, if_exists='replace')\n", []),
        ("def load(engine):\n    df = extract_all()\n"
         "    df.to_sql('daily_sales', engine, if_exists='replace')\n", []),
    ],
)
def test_partition_replace(tmp_path: Path, code: str, want: list[tuple[int, str]]) -> None:
    assert rules_for(tmp_path, "x.py", code) == want


def test_data_generators_are_left_out(tmp_path: Path) -> None:
    code = ("from faker import Faker\nimport psycopg\nfake = Faker()\n"
            "with psycopg.connect('') as conn:\n    for _ in range(100):\n"
            "        conn.execute('INSERT INTO customers VALUES (%s)', (fake.name(),))\n")
    p = tmp_path / "gen_customers.py"
    p.write_text(code, encoding="utf-8")
    res = review_paths([p])
    assert res.findings == [] and "data generator" in res.skipped[0].reason
    from idemtest.review import ReviewOptions

    both = review_paths([p], options=ReviewOptions(include_tests=True))
    assert [f.rule_id for f in both.findings] == ["IDM201"]
    # faker filling a transform that reads a source is still reviewed
    p.write_text(code.replace("INSERT INTO customers VALUES (%s)",
                              "INSERT INTO customers SELECT * FROM raw.people WHERE n = %s"), encoding="utf-8")
    assert [f.rule_id for f in review_paths([p]).findings] == ["IDM201"]


def test_offsets_committed_before_the_write(tmp_path: Path) -> None:
    code = ("def run(consumer, engine):\n    while True:\n        batch = consumer.poll()\n"
            "        consumer.store_offsets(batch)\n"
            "        frame(batch).to_sql('events', engine, if_exists='append', method=upsert)\n")
    assert rules_for(tmp_path, "x.py", code) == [(4, "IDM405")]
    fixed = code.replace("        consumer.store_offsets(batch)\n", "") + \
        "        consumer.store_offsets(batch)\n"
    assert rules_for(tmp_path, "x.py", fixed) == []


@pytest.mark.parametrize(
    ("code", "want"),
    [
        ("from snowflake.connector.pandas_tools import write_pandas\n"
         "def load(conn, df):\n    write_pandas(conn, df, 'ORDERS')\n", [(3, "IDM201")]),
        ("from snowflake.connector.pandas_tools import write_pandas\n"
         "def load(conn, df):\n    write_pandas(conn, df, table_name='ORDERS', overwrite=True)\n",
         []),
        ("from snowflake.connector.pandas_tools import write_pandas\n"
         "def load(conn, df):\n    write_pandas(conn, df, 'STG_ORDERS')\n"
         "    conn.cursor().execute('MERGE INTO orders o USING stg_orders s ON o.id = s.id "
         "WHEN MATCHED THEN UPDATE SET v = s.v')\n", []),
        ("def load(client, df):\n    client.load_table_from_dataframe(df, 'p.d.orders')\n",
         [(2, "IDM201")]),
        ("from google.cloud import bigquery\ndef load(client, df):\n"
         "    client.load_table_from_dataframe(df, 'p.d.orders', job_config=bigquery."
         "LoadJobConfig(write_disposition='WRITE_TRUNCATE'))\n", []),
        ("def load(client, df, cfg):\n"
         "    client.load_table_from_dataframe(df, 'p.d.orders', job_config=cfg)\n", []),
    ],
)
def test_library_loads_that_append(tmp_path: Path, code: str, want: list[tuple[int, str]]) -> None:
    assert rules_for(tmp_path, "x.py", code) == want
