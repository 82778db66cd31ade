"""IDM7xx (idemtest/review/spark_rules.py): `idemtest review` reads PySpark and Delta
writes. On examples/spark/jobs.py it flags exactly the jobs `idemtest.spark.check`
catches at run time (examples/spark/test_jobs.py), and none of the correct ones."""

from __future__ import annotations

import textwrap
from pathlib import Path

from idemtest.review import RULES, review_paths

ROOT = Path(__file__).resolve().parents[2]


def _found(path: Path) -> list[tuple[int, str]]:
    return [(f.line, f.rule_id) for f in review_paths([path]).findings]


def test_the_spark_examples_static_and_dynamic_views_agree():
    jobs = ROOT / "examples" / "spark" / "jobs.py"
    lines = jobs.read_text().splitlines()

    def function_of(line: int) -> str:
        for i in range(line - 1, -1, -1):
            if lines[i].startswith("def "):
                return lines[i][4:].split("(")[0]
        return "?"

    found = sorted((function_of(line), rule) for line, rule in _found(jobs))
    assert found == [
        ("customers_merge_duplicate_key", "IDM703"),
        ("daily_sales_insert_into", "IDM702"),
        ("daily_sales_static_overwrite", "IDM701"),
        ("sales_log_output_before_checkpoint", "IDM702"),
        ("sales_replace_where_wall_clock", "IDM704"),
    ]
    assert {r for r in RULES if r.startswith("IDM7")} == {"IDM701", "IDM702", "IDM703", "IDM704"}


def _review(tmp_path: Path, code: str) -> list[str]:
    f = tmp_path / "job.py"
    f.write_text(textwrap.dedent(code))
    return [rule for _, rule in _found(f)]


def test_partitioned_overwrite_depends_on_the_overwrite_mode(tmp_path):
    static = """
    def job(spark, df, path):
        df.write.mode("overwrite").partitionBy("day").parquet(path)
    """
    assert _review(tmp_path, static) == ["IDM701"]
    dynamic_option = """
    def job(spark, df, path):
        df.write.mode("overwrite").option("partitionOverwriteMode", "dynamic").partitionBy("day").parquet(path)
    """
    assert _review(tmp_path, dynamic_option) == []
    dynamic_conf = """
    def job(spark, df):
        spark.conf.set("spark.sql.sources.partitionOverwriteMode", "dynamic")
        df.write.insertInto("sales", overwrite=True)
    """
    assert _review(tmp_path, dynamic_conf) == []
    save_as_table = """
    def job(spark, df):
        spark.conf.set("spark.sql.sources.partitionOverwriteMode", "dynamic")
        df.write.mode("overwrite").partitionBy("day").saveAsTable("sales")
    """
    assert _review(tmp_path, save_as_table) == ["IDM701"]  # saveAsTable replaces the table whatever the mode


def test_appends_merges_and_wall_clock_predicates(tmp_path):
    assert _review(tmp_path, """
    def job(df):
        df.write.mode("append").saveAsTable("events")
    """) == ["IDM702"]
    assert _review(tmp_path, """
    from delta.tables import DeltaTable
    def job(spark, updates):
        DeltaTable.forName(spark, "customers").alias("t").merge(updates.alias("s"), "t.id = s.id").whenMatchedUpdateAll().execute()
    """) == ["IDM703"]
    assert _review(tmp_path, """
    from delta.tables import DeltaTable
    def job(spark, updates):
        latest = updates.dropDuplicates(["id"])
        DeltaTable.forName(spark, "customers").alias("t").merge(latest.alias("s"), "t.id = s.id").whenMatchedUpdateAll().execute()
    """) == []
    assert _review(tmp_path, """
    from datetime import date
    def job(df, path):
        day = date.today().isoformat()
        df.write.format("delta").mode("overwrite").option("replaceWhere", f"day = '{day}'").save(path)
    """) == ["IDM501", "IDM704"]  # the run-time window rule sees the same wall clock
