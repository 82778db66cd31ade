"""Revenue loaders written with pandas and SQLAlchemy."""

from datetime import date, timedelta

import pandas as pd
from sqlalchemy import create_engine, text

engine = create_engine("postgresql+psycopg2://etl@warehouse/analytics")


def load_yesterday() -> None:
    day = date.today() - timedelta(days=1)  # expect: IDM501
    df = pd.read_sql(
        text("SELECT store_id, sum(amount) AS revenue FROM sales WHERE sale_date = :day GROUP BY store_id"),
        engine,
        params={"day": day},
    )
    df["sale_date"] = day
    df.to_sql("daily_revenue", engine, if_exists="append", index=False)  # expect: IDM202


def refresh_changed_products(since: str) -> None:
    df = pd.read_sql(
        text("SELECT product_id, name, price, updated_at FROM products WHERE updated_at >= :since - interval '1 day'"),
        engine,
        params={"since": since},
    )
    df.to_sql("dim_product", engine, if_exists="replace", index=False)  # expect: IDM203
