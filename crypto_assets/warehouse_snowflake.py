"""The prod warehouse: Snowflake through dagster-snowflake-pandas.

Kept apart from warehouse.py so local runs never import the Snowflake connector (about 100 MiB).
"""

from contextlib import closing
from typing import Any

import pandas as pd
from dagster._core.storage.db_io_manager import DbIOManager
from dagster_snowflake import SnowflakeResource
from dagster_snowflake.snowflake_io_manager import SnowflakeDbClient
from dagster_snowflake_pandas import SnowflakePandasIOManager, SnowflakePandasTypeHandler

from crypto_assets.resources import WarehouseResource
from crypto_assets.warehouse import DayFramesHandler, NamedTableDbIOManager


class SnowflakeWarehouseIOManager(SnowflakePandasIOManager):
    """The prod warehouse: Snowflake via write_pandas, into the table the sql/ scripts create."""

    def create_io_manager(self, context) -> DbIOManager:
        return NamedTableDbIOManager(
            db_client=SnowflakeDbClient(),
            io_manager_name="SnowflakeIOManager",
            database=self.database,
            schema=self.schema_,
            type_handlers=[
                SnowflakePandasTypeHandler(),
                DayFramesHandler(SnowflakePandasTypeHandler()),
            ],
            default_load_type=pd.DataFrame,
        )


class SnowflakeWarehouse(WarehouseResource):
    snowflake: SnowflakeResource

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        with self.snowflake.get_connection() as connection, closing(connection.cursor()) as cursor:
            return list(cursor.execute(sql).fetchall())
