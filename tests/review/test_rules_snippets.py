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
        ("SELECT * FROM s WHERE ts > now() - interval '1 hour';", [(1, "IDM401")]),
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
         "         default_args={'retries': 50, 'retry_delay': 60}):\n    pass\n",
         [(3, "IDM103")]),
        ("from airflow import DAG\ndag = DAG('d', catchup=False, max_active_runs=1)\n",
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
