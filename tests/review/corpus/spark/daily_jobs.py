"""PySpark / Delta jobs of a daily pipeline (IDM7xx): partition overwrites, appends, merges."""

from datetime import date, timedelta

from delta.tables import DeltaTable
from pyspark.sql import functions as F


def daily_revenue(spark, start, end):
    df = spark.table("orders").where((F.col("ts") >= start) & (F.col("ts") < end))
    df.groupBy("day").agg(F.sum("amount")).write.mode("overwrite").partitionBy("day").saveAsTable("revenue")  # expect: IDM701


def raw_events(spark, path, start, end):
    spark.table("events").where(F.col("ts") < end).write.insertInto("raw_events")  # expect: IDM702


def upsert_customers(spark, changes):
    target = DeltaTable.forName(spark, "customers")
    target.alias("t").merge(changes.alias("s"), "t.id = s.id").whenMatchedUpdateAll().whenNotMatchedInsertAll().execute()  # expect: IDM703


def refresh_yesterday(spark, df, path):
    day = (date.today() - timedelta(days=1)).isoformat()  # expect: IDM501
    df.write.format("delta").mode("overwrite").option("replaceWhere", f"day = '{day}'").save(path)  # expect: IDM704
