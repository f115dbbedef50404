"""The local warehouse: a DuckDB file, loaded through Dagster's DuckDB pandas IO manager."""

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
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


LOCK_HOLDER = re.compile(r"Conflicting lock is held in (?P<program>.+?) \(PID (?P<pid>\d+)\)")
DEFAULT_LOCK_WAIT_SECONDS = 60.0


def _describe_lock_holder(message: str) -> str:
    """Who holds the file, from DuckDB's error and the holder's command line when readable."""
    match = LOCK_HOLDER.search(message)
    if match is None:
        return "another process"
    pid = match["pid"]
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        command = match["program"]
    return f"process {pid} ({command[:160]})"


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
                    f" DuckDB said: {exc}"
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
