"""Prefect flow pulling the last hour of orders into the warehouse with pandas."""

from datetime import datetime, timedelta

import pandas as pd
import psycopg
from prefect import flow, task
from sqlalchemy import create_engine

engine = create_engine("postgresql+psycopg://etl@warehouse/analytics")


@task(retries=5)  # expect: IDM103
def extract(since: datetime) -> pd.DataFrame:
    with psycopg.connect("postgresql://etl@shop/shop") as conn:
        return pd.read_sql(
            "SELECT order_id, status, amount, updated_at FROM orders WHERE updated_at >= %(since)s",  # expect: IDM402
            conn,
            params={"since": since},
        )


@task(retries=2, retry_delay_seconds=30)
def load(df: pd.DataFrame) -> None:
    df.to_sql("orders", engine, schema="analytics", if_exists="append", index=False)  # expect: IDM202


@flow(log_prints=True)
def hourly_orders() -> None:
    since = datetime.now() - timedelta(hours=1)  # expect: IDM401
    load(extract(since))


if __name__ == "__main__":
    hourly_orders.serve(name="hourly-orders", cron="5 * * * *")  # expect: IDM102
