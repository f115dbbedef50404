"""The warehouse IO manager machinery both flavours share (DuckDB locally, Snowflake in prod).

Dagster's database IO managers name the table after the asset key; ours is
``cryptodb.cryptoschema.btcusdt`` while the asset is ``snowflake_btcusdt``, so the table comes
from the ``warehouse_table`` metadata. A re-materialized range is deleted and inserted again in
one transaction, which is what keeps a day from ever being loaded twice or half. Besides
DataFrames (for reading), the IO managers accept ``DayFrames`` and insert them a batch of days
at a time, so a year-long range never sits in memory as one frame.
"""

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import Any

import dagster as dg
import pandas as pd

# TableMetadataSet, TimeWindow and the DbIOManager family have no public export; subclassing
# DbIOManager is how Dagster's own DuckDB and Snowflake IO managers are built.
from dagster._core.definitions.metadata import TableMetadataSet
from dagster._core.definitions.partitions.utils import TimeWindow
from dagster._core.storage.db_io_manager import DbIOManager, DbTypeHandler, TableSlice
from pydantic import Field

from crypto_assets.klines.frames import DayFrames, split_frame_by_day

TABLE_METADATA_KEY = "warehouse_table"
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def slice_delete_statement(table_slice: TableSlice, qualified_table: str | None = None) -> str:
    """DELETE of the slice's time window on its partition column (no partitions: every row)."""
    table = qualified_table or f"{table_slice.schema}.{table_slice.table}"
    if not table_slice.partition_dimensions:
        return f"DELETE FROM {table}"
    conditions = []
    for dimension in table_slice.partition_dimensions:
        window = dimension.partitions
        if not isinstance(window, TimeWindow):
            raise TypeError(f"{table} is partitioned by time only, not by {window!r}")
        conditions.append(
            f"{dimension.partition_expr} >= '{window.start.strftime(SQL_TIME)}'"
            f" AND {dimension.partition_expr} < '{window.end.strftime(SQL_TIME)}'"
        )
    return f"DELETE FROM {table} WHERE " + " AND ".join(conditions)


SQL_TIME = "%Y-%m-%d %H:%M:%S"


class DayFramesHandler(DbTypeHandler, ABC):
    """Replaces a table slice with DayFrames atomically: one transaction deletes the slice and
    inserts every day, so readers see the old range or the new one, never a mix."""

    @abstractmethod
    def replace_slice(
        self, context: dg.OutputContext, table_slice: TableSlice, days: DayFrames, connection: Any
    ) -> int:
        """Deletes the slice and inserts the days in one transaction; returns rows inserted."""

    @property
    @abstractmethod
    def frame_handler(self) -> DbTypeHandler: ...

    def handle_output(
        self, context: dg.OutputContext, table_slice: TableSlice, obj: DayFrames, connection: Any
    ) -> Mapping[str, object]:
        return {
            "dagster/partition_row_count": self.replace_slice(context, table_slice, obj, connection)
        }

    def load_input(
        self, context: dg.InputContext, table_slice: TableSlice, connection: Any
    ) -> DayFrames:
        frame = self.frame_handler.load_input(context, table_slice, connection)
        return DayFrames(split_frame_by_day(frame, list(context.asset_partition_keys)))

    @property
    def supported_types(self) -> Sequence[type]:
        return [DayFrames]


class NamedTableDbIOManager(DbIOManager):
    """DbIOManager that writes to the table named in the asset's ``warehouse_table`` metadata,
    and hands DayFrames to their handler whole, so the delete joins the insert's transaction."""

    def _get_table_slice(
        self, context: dg.OutputContext | dg.InputContext, output_context: dg.OutputContext
    ) -> TableSlice:
        table_slice = super()._get_table_slice(context, output_context)
        table = (output_context.definition_metadata or {}).get(TABLE_METADATA_KEY)
        return table_slice._replace(table=str(table)) if table else table_slice

    def handle_output(self, context: dg.OutputContext, obj: object) -> None:
        if not isinstance(obj, DayFrames):
            super().handle_output(context, obj)
            return
        table_slice = self._get_table_slice(context, context)
        handler = self._resolve_handler(DayFrames)
        with self._db_client.connect(context, table_slice) as connection:
            self._db_client.ensure_schema_exists(context, table_slice, connection)
            metadata = handler.handle_output(context, table_slice, obj, connection)
        context.add_output_metadata(
            {
                **metadata,
                "Query": self._db_client.get_select_statement(table_slice),
                **TableMetadataSet(table_name=self._db_client.get_table_name(table_slice)),
            }
        )


class WarehouseResource(dg.ConfigurableResource, ABC):
    """Runs read-only SQL that both DuckDB and Snowflake understand, e.g. counts per day.

    Queries name tables through ``qualified_table``, so a non-default schema (prod's
    ``SNOWFLAKE_SCHEMA``) is read where the IO manager wrote.
    """

    schema_name: str = Field(default="cryptoschema", description="Schema that holds the tables.")

    def qualified_table(self, table: str) -> str:
        """schema.table, refusing anything but plain identifiers (the names go into SQL text)."""
        for name in (self.schema_name, table):
            if not IDENTIFIER.match(name):
                raise ValueError(f"Not a plain SQL identifier: {name!r}")
        return f"{self.schema_name}.{table}"

    @abstractmethod
    def query(self, sql: str) -> list[tuple[Any, ...]]: ...

    def table_exists(self, table: str) -> bool:
        """Whether the schema holds the table yet (an asset that wrote no rows creates none)."""
        self.qualified_table(table)  # refuses anything but plain identifiers
        return bool(
            self.query(
                "select count(*) from information_schema.tables"
                f" where lower(table_schema) = lower('{self.schema_name}')"
                f" and lower(table_name) = lower('{table}')"
            )[0][0]
        )

    @abstractmethod
    def query_frame(self, sql: str) -> pd.DataFrame:
        """The result as a DataFrame with lower-case column names."""

    @property
    @abstractmethod
    def dialect(self) -> str:
        """'duckdb' or 'snowflake', for the few expressions the two spell differently."""

    @abstractmethod
    def replace_tables(self, tables: Mapping[str, pd.DataFrame]) -> None:
        """Replaces every named table with its frame's rows, whatever columns the frame has, so
        that a reader sees all the old tables or all the new ones: never an empty table, never a
        new table beside an old one of the same set (backtests, their trades and equity).

        A failure anywhere leaves every table as it was."""

    @abstractmethod
    def execute(self, setup: Sequence[str], transaction: Sequence[str]) -> None:
        """Runs ``setup`` (e.g. CREATE TABLE IF NOT EXISTS) one by one, then ``transaction`` in
        one transaction, rolled back whole if any statement fails: SQL that writes inside the
        warehouse, so large tables are never pulled into Python."""


def rows_per_day(
    warehouse: WarehouseResource, table: str, first_day: str, last_day: str
) -> dict[str, int]:
    """Candles per UTC day in the warehouse table, in SQL that DuckDB and Snowflake both run."""
    first = date.fromisoformat(first_day)
    after_last = date.fromisoformat(last_day) + timedelta(days=1)
    rows = warehouse.query(
        f"select cast(open_time as date) as day, count(*) from {warehouse.qualified_table(table)}"
        f" where open_time >= '{first.isoformat()} 00:00:00'"
        f" and open_time < '{after_last.isoformat()} 00:00:00' group by 1"
    )
    return {str(day): int(count) for day, count in rows}
