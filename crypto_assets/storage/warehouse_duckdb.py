"""The local warehouse: a DuckDB file, loaded through Dagster's DuckDB pandas IO manager."""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import dagster as dg
import duckdb
import pandas as pd

# DbIOManager's family has no public export (see storage/warehouse.py); backoff is Dagster's
# own retry helper for DuckDB's file lock, which its DuckDB IO manager uses the same way.
from dagster._core.storage.db_io_manager import DbIOManager, DbTypeHandler, TableSlice
from dagster._utils.backoff import backoff
from dagster_duckdb import DuckDBResource
from dagster_duckdb.io_manager import DuckDbClient
from dagster_duckdb_pandas import DuckDBPandasIOManager, DuckDBPandasTypeHandler

from crypto_assets.klines.frames import DayFrames
from crypto_assets.storage.warehouse import (
    DayFramesHandler,
    NamedTableDbIOManager,
    WarehouseResource,
    slice_delete_statement,
)


class _DuckDBDayFramesHandler(DayFramesHandler):
    """DuckDB: insert by column name inside one explicit transaction."""

    @property
    def frame_handler(self) -> DbTypeHandler:
        return DuckDBPandasTypeHandler()

    def replace_slice(
        self, context: dg.OutputContext, table_slice: TableSlice, days: DayFrames, connection: Any
    ) -> int:
        table = f"{table_slice.schema}.{table_slice.table}"
        rows = 0
        connection.begin()
        try:
            table_exists = connection.execute(
                "select count(*) from information_schema.tables"
                " where table_schema = ? and table_name = ?",
                [table_slice.schema, table_slice.table],
            ).fetchall()[0][0]
            if table_exists:
                connection.execute(slice_delete_statement(table_slice)).fetchall()
            for _, frame in days:
                if frame.empty:
                    continue
                connection.register("day_frame", frame)
                connection.execute(
                    f"create table if not exists {table} as select * from day_frame limit 0"
                ).fetchall()
                connection.execute(
                    f"insert into {table} by name select * from day_frame"
                ).fetchall()
                connection.unregister("day_frame")
                rows += len(frame)
            connection.commit()
        except BaseException:
            connection.rollback()
            raise
        return rows


class _ClosingDuckDbClient(DuckDbClient):
    """DuckDbClient whose connection is closed even when the load fails, so a failed run does
    not keep the database file open (and locked) for the rest of the process."""

    @staticmethod
    @contextmanager
    def connect(context: dg.OutputContext | dg.InputContext, _: TableSlice) -> Iterator[Any]:
        connection = backoff(
            fn=duckdb.connect,
            retry_on=(RuntimeError, duckdb.IOException),
            kwargs={
                "database": context.resource_config["database"],
                "read_only": False,
                "config": context.resource_config["connection_config"],
            },
            max_retries=10,
        )
        try:
            yield connection
        finally:
            connection.close()


class DuckDBWarehouseIOManager(DuckDBPandasIOManager):
    """The local warehouse: a DuckDB file whose catalog name is the file's stem (cryptodb)."""

    def create_io_manager(self, context) -> DbIOManager:
        return NamedTableDbIOManager(
            db_client=_ClosingDuckDbClient(),
            database=self.database,
            schema=self.schema_,
            type_handlers=[DuckDBPandasTypeHandler(), _DuckDBDayFramesHandler()],
            default_load_type=pd.DataFrame,
            io_manager_name="DuckDBIOManager",
        )


class DuckDBWarehouse(WarehouseResource):
    duckdb: DuckDBResource

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        with self.duckdb.get_connection() as connection:
            return connection.execute(sql).fetchall()

    def query_frame(self, sql: str) -> pd.DataFrame:
        with self.duckdb.get_connection() as connection:
            return connection.execute(sql).fetchdf()

    @property
    def dialect(self) -> str:
        return "duckdb"

    def execute(self, setup: Sequence[str], transaction: Sequence[str]) -> None:
        with self.duckdb.get_connection() as connection:
            for statement in setup:
                connection.execute(statement)
            connection.begin()
            try:
                for statement in transaction:
                    connection.execute(statement)
                connection.commit()
            except BaseException:
                connection.rollback()
                raise
