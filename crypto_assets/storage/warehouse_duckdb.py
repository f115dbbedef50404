"""The local warehouse: a DuckDB file, loaded through Dagster's DuckDB pandas IO manager."""

import re
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pandas as pd

# DbIOManager's family has no public export (see storage/warehouse.py).
from dagster._core.storage.db_io_manager import DbIOManager, DbTypeHandler, TableSlice
from dagster_duckdb import DuckDBResource
from dagster_duckdb.io_manager import DuckDbClient
from dagster_duckdb_pandas import DuckDBPandasIOManager, DuckDBPandasTypeHandler
from pydantic import Field

from crypto_assets.klines.frames import DayBatch, DayFrames
from crypto_assets.klines.write_behind import WriteBehind
from crypto_assets.storage.warehouse import (
    DayFramesHandler,
    NamedTableDbIOManager,
    WarehouseResource,
    slice_delete_statement,
)

ONE_TRANSACTION_DAYS = 31
"""A range up to this long is replaced in one transaction. Longer ranges (years of history)
commit one calendar month at a time: a year held uncommitted costs DuckDB about 175 MiB, the
whole history would not fit in 512 MiB. Each month is deleted and inserted atomically, so a run
that dies part way leaves whole months replaced and the rest as they were, never part of a day."""


def commit_batches(batches: Iterable[DayBatch], range_days: int) -> Iterator[list[DayBatch]]:
    """Groups batches of days into the ones that commit together: the whole range, or calendar
    months (a batch read back from a zone never spans two)."""
    group: list[DayBatch] = []
    for batch in batches:
        if (
            group
            and range_days > ONE_TRANSACTION_DAYS
            and batch.keys[0][:7] != group[0].keys[0][:7]
        ):
            yield group
            group = []
        group.append(batch)
    if group:
        yield group


def _day_window_delete(table: str, partition_expr: str, first_day: str, last_day: str) -> str:
    after_last = date.fromisoformat(last_day) + timedelta(days=1)
    return (
        f"DELETE FROM {table} WHERE {partition_expr} >= '{first_day} 00:00:00'"
        f" AND {partition_expr} < '{after_last.isoformat()} 00:00:00'"
    )


class _DuckDBDayFramesHandler(DayFramesHandler):
    """DuckDB: delete the batch's days and insert them by column name, one insert per batch."""

    @property
    def frame_handler(self) -> DbTypeHandler:
        return DuckDBPandasTypeHandler()

    def replace_slice(
        self, context: dg.OutputContext, table_slice: TableSlice, days: DayFrames, connection: Any
    ) -> int:
        table = f"{table_slice.schema}.{table_slice.table}"
        partition_keys = list(context.asset_partition_keys) if context.has_asset_partitions else []
        rows = 0
        # A batch is inserted and committed in a thread while the next one is read: DuckDB's
        # insert, commit and checkpoint run outside the GIL.
        with WriteBehind(depth=1) as writes:
            for group in commit_batches(days.batches(), len(partition_keys)):
                writes.submit(
                    self._replace_batch, connection, table_slice, table, group, len(partition_keys)
                )
                rows += sum(len(batch.frame) for batch in group)
        return rows

    def _replace_batch(
        self,
        connection: Any,
        table_slice: TableSlice,
        table: str,
        group: list[DayBatch],
        range_days: int,
    ) -> None:
        frames = [batch.frame for batch in group if not batch.frame.empty]
        connection.begin()
        try:
            table_exists = connection.execute(
                "select count(*) from information_schema.tables"
                " where table_schema = ? and table_name = ?",
                [table_slice.schema, table_slice.table],
            ).fetchall()[0][0]
            if table_exists:
                if range_days > ONE_TRANSACTION_DAYS:
                    delete = _day_window_delete(
                        table,
                        table_slice.partition_dimensions[0].partition_expr,
                        group[0].keys[0],
                        group[-1].keys[-1],
                    )
                else:
                    delete = slice_delete_statement(table_slice)
                connection.execute(delete).fetchall()
            if frames:
                batch_frame = (
                    frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
                )
                connection.register("batch_frame", batch_frame)
                connection.execute(
                    f"create table if not exists {table} as select * from batch_frame limit 0"
                ).fetchall()
                connection.execute(
                    f"insert into {table} by name select * from batch_frame"
                ).fetchall()
                connection.unregister("batch_frame")
            connection.commit()
        except BaseException:
            connection.rollback()
            raise


LOCK_HOLDER = re.compile(r"Conflicting lock is held in (?P<program>.+?) \(PID (?P<pid>\d+)\)")
DEFAULT_LOCK_WAIT_SECONDS = 60.0


def _describe_lock_holder(message: str) -> str:
    """Who holds the file: its PID and program name from DuckDB's error. Never its command line,
    which may carry a password or token."""
    match = LOCK_HOLDER.search(message)
    if match is None:
        return "another process"
    return f"process {match['pid']} ({Path(match['program']).name})"


def connect_waiting_for_lock(
    database: str, config: dict[str, Any], wait_seconds: float
) -> duckdb.DuckDBPyConnection:
    """Opens the file for writing, waiting up to ``wait_seconds`` while another process holds it.

    DuckDB lets one process write, and a process that has the file open even read-only blocks
    every other: a notebook or the DuckDB CLI left open on the warehouse stops the load.
    """
    deadline = time.monotonic() + wait_seconds
    pause = 0.1
    while True:
        try:
            return duckdb.connect(database=database, read_only=False, config=config)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise dg.Failure(
                    f"The DuckDB warehouse {database} is held by {_describe_lock_holder(str(exc))}"
                    f" and stayed locked for {wait_seconds:g}s, so nothing was loaded. Close that"
                    " process (a notebook, the DuckDB CLI, another run) and run again."
                ) from exc
            time.sleep(min(pause, remaining))
            pause = min(pause * 2, 2.0)


class _ClosingDuckDbClient(DuckDbClient):
    """DuckDbClient whose connection is closed even when the load fails, so a failed run does
    not keep the database file open (and locked) for the rest of the process."""

    @staticmethod
    @contextmanager
    def connect(context: dg.OutputContext | dg.InputContext, _: TableSlice) -> Iterator[Any]:
        config = context.resource_config
        connection = connect_waiting_for_lock(
            config["database"],
            config["connection_config"],
            config.get("lock_wait_seconds", DEFAULT_LOCK_WAIT_SECONDS),
        )
        try:
            yield connection
        finally:
            connection.close()


class DuckDBWarehouseIOManager(DuckDBPandasIOManager):
    """The local warehouse: a DuckDB file whose catalog name is the file's stem (cryptodb)."""

    lock_wait_seconds: float = Field(
        default=DEFAULT_LOCK_WAIT_SECONDS,
        description="How long a load waits for another process to release the DuckDB file.",
    )

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

    def replace_tables(self, tables: Mapping[str, pd.DataFrame]) -> None:
        """CREATE OR REPLACE TABLE ... AS SELECT for every table, all in one transaction:
        DuckDB's catalog is transactional, so readers keep the old tables until the commit, and
        a new column (or a dropped one) comes with the new rows."""
        targets = {table: self.qualified_table(table) for table in tables}
        with self.duckdb.get_connection() as connection:
            connection.execute(f"create schema if not exists {self.schema_name}")
            connection.begin()
            try:
                for table, frame in tables.items():
                    connection.register("replacement", frame)
                    connection.execute(
                        f"create or replace table {targets[table]} as select * from replacement"
                    )
                    connection.unregister("replacement")
                connection.commit()
            except BaseException:
                connection.rollback()
                raise

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
