"""The warehouse IO manager machinery, and its DuckDB flavour for local runs.

Dagster's database IO managers name the table after the asset key; ours is
``cryptodb.cryptoschema.btcusdt`` while the asset is ``snowflake_btcusdt``, so the table comes
from the ``warehouse_table`` metadata. A re-materialized range is deleted and inserted again,
which is what keeps a day from ever being loaded twice. Besides DataFrames, both accept
``DayFrames`` and insert them one day at a time, so a year-long range never sits in memory.
"""

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, timedelta
from typing import Any, Protocol

import dagster as dg
import pandas as pd
from dagster._core.storage.db_io_manager import DbIOManager, DbTypeHandler, TableSlice
from dagster_duckdb.io_manager import DuckDbClient, _get_cleanup_statement
from dagster_duckdb_pandas import DuckDBPandasIOManager, DuckDBPandasTypeHandler

from crypto_assets.transform import DayFrames, split_frame_by_day

TABLE_METADATA_KEY = "warehouse_table"


class NamedTableDbIOManager(DbIOManager):
    """DbIOManager that writes to the table named in the asset's ``warehouse_table`` metadata."""

    def _get_table_slice(
        self, context: dg.OutputContext | dg.InputContext, output_context: dg.OutputContext
    ) -> TableSlice:
        table_slice = super()._get_table_slice(context, output_context)
        table = (output_context.definition_metadata or {}).get(TABLE_METADATA_KEY)
        return table_slice._replace(table=str(table)) if table else table_slice


class _TransactionalDuckDbClient(DuckDbClient):
    """Deletes the partition range and inserts its rows in one transaction: all or nothing."""

    @staticmethod
    @contextmanager
    def connect(context, table_slice) -> Iterator:
        with DuckDbClient.connect(context, table_slice) as connection:
            connection.begin()
            try:
                yield connection
            except BaseException:
                connection.rollback()
                raise
            connection.commit()

    @staticmethod
    def delete_table_slice(context, table_slice: TableSlice, connection) -> None:
        exists = connection.execute(
            "select count(*) from information_schema.tables"
            " where table_schema = ? and table_name = ?",
            [table_slice.schema, table_slice.table],
        ).fetchall()[0][0]
        if exists:
            connection.execute(_get_cleanup_statement(table_slice)).fetchall()


class DayFramesHandler(DbTypeHandler):
    """Writes DayFrames day by day through a DataFrame handler; loads them back grouped by day."""

    def __init__(self, frame_handler: DbTypeHandler) -> None:
        self._frame_handler = frame_handler

    def _write_day(self, context, table_slice: TableSlice, frame: pd.DataFrame, connection) -> None:
        self._frame_handler.handle_output(context, table_slice, frame, connection)

    def handle_output(
        self, context: dg.OutputContext, table_slice: TableSlice, obj: DayFrames, connection
    ) -> Mapping[str, object]:
        rows = days = 0
        for _, frame in obj:
            if len(frame):
                self._write_day(context, table_slice, frame, connection)
            rows += len(frame)
            days += 1
        return {"dagster/partition_row_count": rows, "days": days}

    def load_input(
        self, context: dg.InputContext, table_slice: TableSlice, connection
    ) -> DayFrames:
        frame = self._frame_handler.load_input(context, table_slice, connection)
        return DayFrames(split_frame_by_day(frame, list(context.asset_partition_keys)))

    @property
    def supported_types(self) -> Sequence[type]:
        return [DayFrames]


class _DuckDBDayFramesHandler(DayFramesHandler):
    """DuckDB insert by column name; the stock handler would re-add its metadata every day."""

    def _write_day(self, context, table_slice: TableSlice, frame: pd.DataFrame, connection) -> None:
        table = f"{table_slice.schema}.{table_slice.table}"
        connection.register("day_frame", frame)
        try:
            connection.execute(
                f"create table if not exists {table} as select * from day_frame limit 0"
            ).fetchall()
            connection.execute(f"insert into {table} by name select * from day_frame").fetchall()
        finally:
            connection.unregister("day_frame")


class DuckDBWarehouseIOManager(DuckDBPandasIOManager):
    """The local warehouse: a DuckDB file whose catalog name is the file's stem (cryptodb)."""

    def create_io_manager(self, context) -> DbIOManager:
        return NamedTableDbIOManager(
            db_client=_TransactionalDuckDbClient(),
            database=self.database,
            schema=self.schema_,
            type_handlers=[
                DuckDBPandasTypeHandler(),
                _DuckDBDayFramesHandler(DuckDBPandasTypeHandler()),
            ],
            default_load_type=pd.DataFrame,
            io_manager_name="DuckDBIOManager",
        )


class _Queryable(Protocol):
    def query(self, sql: str) -> list[tuple[Any, ...]]: ...


def rows_per_day(
    warehouse: _Queryable, table: str, first_day: str, last_day: str
) -> dict[str, int]:
    """Candles per UTC day in cryptoschema.<table>, in SQL that DuckDB and Snowflake both run."""
    first = date.fromisoformat(first_day)
    after_last = date.fromisoformat(last_day) + timedelta(days=1)
    if not table.isalnum():
        raise ValueError(f"Not a table name: {table!r}")
    rows = warehouse.query(
        f"select cast(open_time as date) as day, count(*) from cryptoschema.{table}"
        f" where open_time >= '{first.isoformat()} 00:00:00'"
        f" and open_time < '{after_last.isoformat()} 00:00:00' group by 1"
    )
    return {str(day): int(count) for day, count in rows}
