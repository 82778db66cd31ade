"""A hand-written DuckDB IO manager: appends every output it is handed."""

import duckdb
import pandas as pd
from dagster import ConfigurableIOManager, InputContext, OutputContext


class AppendingDuckDBIOManager(ConfigurableIOManager):
    database: str

    def handle_output(self, context: OutputContext, obj: pd.DataFrame) -> None:
        table = context.asset_key.path[-1]
        con = duckdb.connect(self.database)
        con.register("obj", obj)
        con.execute(f"CREATE TABLE IF NOT EXISTS {table} AS SELECT * FROM obj LIMIT 0")
        con.execute(f"INSERT INTO {table} SELECT * FROM obj")  # expect: IDM201
        con.close()

    def load_input(self, context: InputContext) -> pd.DataFrame:
        table = context.asset_key.path[-1]
        con = duckdb.connect(self.database)
        return con.execute(f"SELECT * FROM {table}").df()
