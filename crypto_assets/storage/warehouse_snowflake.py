"""The prod warehouse: Snowflake through dagster-snowflake-pandas.

Kept apart from warehouse_duckdb.py so local runs never import the Snowflake connector
(about 100 MiB).
"""

import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from contextlib import closing
from typing import Any

import dagster as dg
import pandas as pd

# DbIOManager's family has no public export (see storage/warehouse.py).
from dagster._core.storage.db_io_manager import DbIOManager, DbTypeHandler, TableSlice
from dagster_snowflake import SnowflakeResource
from dagster_snowflake.snowflake_io_manager import SnowflakeDbClient
from dagster_snowflake_pandas import SnowflakePandasIOManager, SnowflakePandasTypeHandler
from snowflake.connector import pandas_tools
from snowflake.connector.errors import ProgrammingError

from crypto_assets.klines.frames import DayFrames
from crypto_assets.storage.warehouse import (
    DayFramesHandler,
    NamedTableDbIOManager,
    WarehouseResource,
    slice_delete_statement,
)

STALE_STAGING_SECONDS = 6 * 3600
"""A staging table older than this belongs to a load that died: runs end within
max_runtime_seconds (2 h), so no live load has one this old."""


def stale_staging_tables(
    tables: Iterable[tuple[str, float | None]], table: str, max_age_seconds: float
) -> list[str]:
    """Of (name, age in seconds) pairs, the staging tables ``<TABLE>_LOAD_<8 hex>`` of ``table``
    older than ``max_age_seconds``: what a killed load leaves behind (its DROP never ran)."""
    pattern = re.compile(rf"^{re.escape(table)}_LOAD_[0-9A-F]{{8}}$")
    return sorted(
        name
        for name, age in tables
        if pattern.match(name) and age is not None and age > max_age_seconds
    )


def _sweep_stale_staging(
    cursor: Any, database: str, schema: str, table: str, log: Any
) -> list[str]:
    """Drops the target's staging tables that dead loads left, before this load makes its own."""
    catalog = f"{database}.INFORMATION_SCHEMA.TABLES" if database else "INFORMATION_SCHEMA.TABLES"
    rows = cursor.execute(
        "SELECT TABLE_NAME, DATEDIFF('second', CREATED, CURRENT_TIMESTAMP())"
        f" FROM {catalog} WHERE TABLE_SCHEMA = %s",
        (schema,),
    ).fetchall()
    stale = stale_staging_tables(rows, table, STALE_STAGING_SECONDS)
    prefix = f"{database}.{schema}" if database else schema
    for name in stale:
        cursor.execute(f"DROP TABLE IF EXISTS {prefix}.{name}")
    if stale:
        log.warning(f"Dropped staging tables that killed loads left: {', '.join(stale)}")
    return stale


class _SnowflakeDayFramesHandler(DayFramesHandler):
    """Loads the days into a transient staging table, then swaps the slice in one transaction.

    write_pandas creates a temporary stage, and any DDL in Snowflake commits the open
    transaction; staging the rows before BEGIN keeps the DELETE and INSERT in one transaction.
    """

    @property
    def frame_handler(self) -> DbTypeHandler:
        return SnowflakePandasTypeHandler()

    def replace_slice(
        self, context: dg.OutputContext, table_slice: TableSlice, days: DayFrames, connection: Any
    ) -> int:
        database, schema, table = (
            (table_slice.database or "").upper(),
            table_slice.schema.upper(),
            table_slice.table.upper(),
        )
        target = f"{database}.{schema}.{table}" if database else f"{schema}.{table}"
        staging_name = f"{table}_LOAD_{uuid.uuid4().hex[:8].upper()}"
        staging = target.rsplit(".", 1)[0] + "." + staging_name
        rows = 0
        with closing(connection.cursor()) as cursor:
            _sweep_stale_staging(cursor, database, schema, table, context.log)
            try:
                cursor.execute(f"CREATE TRANSIENT TABLE {staging} LIKE {target}")
            except ProgrammingError as exc:
                raise dg.Failure(
                    f"Cannot load {target}: {exc.msg}. Create it with sql/02_tables.sql first."
                ) from exc
            try:
                for batch in days.batches():  # a stage upload per batch of days, not per day
                    frame = batch.frame
                    if frame.empty:
                        continue
                    pandas_tools.write_pandas(
                        conn=connection,
                        df=frame.rename(columns=str.upper),
                        table_name=staging_name,
                        schema=schema,
                        database=database or None,
                        quote_identifiers=True,
                        use_logical_type=True,
                        auto_create_table=False,
                    )
                    rows += len(frame)
                cursor.execute("BEGIN")
                try:
                    cursor.execute(slice_delete_statement(table_slice, target))
                    cursor.execute(f"INSERT INTO {target} SELECT * FROM {staging}")
                    cursor.execute("COMMIT")
                except BaseException:
                    cursor.execute("ROLLBACK")
                    raise
            finally:
                cursor.execute(f"DROP TABLE IF EXISTS {staging}")
        return rows


SNOWFLAKE_TYPES = {
    "f": "FLOAT",
    "i": "NUMBER(38, 0)",
    "u": "NUMBER(38, 0)",
    "b": "BOOLEAN",
    "M": "TIMESTAMP_NTZ",
}
"""numpy dtype kind -> Snowflake column type; anything else (text) is VARCHAR."""


def add_column_statements(table: str, frame: pd.DataFrame, existing: set[str]) -> list[str]:
    """ALTER TABLE ... ADD COLUMN for each column of the frame the table lacks, typed from the
    frame (timestamps TIMESTAMP_NTZ, text VARCHAR), so a new output column reaches prod."""
    statements = []
    for column, dtype in frame.dtypes.items():
        if str(column).upper() in existing:
            continue
        kind = SNOWFLAKE_TYPES.get(dtype.kind, "VARCHAR")
        statements.append(f'ALTER TABLE {table} ADD COLUMN "{str(column).upper()}" {kind}')
    return statements


class SnowflakeWarehouseIOManager(SnowflakePandasIOManager):
    """The prod warehouse: Snowflake, into the table the sql/ scripts create."""

    def create_io_manager(self, context) -> DbIOManager:
        return NamedTableDbIOManager(
            db_client=SnowflakeDbClient(),
            io_manager_name="SnowflakeIOManager",
            database=self.database,
            schema=self.schema_,
            type_handlers=[SnowflakePandasTypeHandler(), _SnowflakeDayFramesHandler()],
            default_load_type=pd.DataFrame,
        )


class SnowflakeWarehouse(WarehouseResource):
    snowflake: SnowflakeResource

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        with self.snowflake.get_connection() as connection, closing(connection.cursor()) as cursor:
            return list(cursor.execute(sql).fetchall())

    def query_frame(self, sql: str) -> pd.DataFrame:
        with self.snowflake.get_connection() as connection, closing(connection.cursor()) as cursor:
            frame = cursor.execute(sql).fetch_pandas_all()
        return frame.rename(columns=str.lower)

    @property
    def dialect(self) -> str:
        return "snowflake"

    def replace_tables(self, tables: Mapping[str, pd.DataFrame]) -> None:
        """Each frame goes into a staging table first (``LIKE`` the table, with its grants and
        any new column added), then one transaction swaps every staging table with its table.

        Snowflake runs each DDL statement, SWAP included, as a transaction of its own, so each
        table changes atomically and the tables of a set change back to back (a SWAP is a
        rename in the catalog), never with one left half written or empty."""
        schema = self.schema_name.upper()
        staged: dict[str, tuple[str, bool]] = {}
        with self.snowflake.get_connection() as connection, closing(connection.cursor()) as cursor:
            try:
                for table, frame in tables.items():
                    self.qualified_table(table)  # refuses anything but plain identifiers
                    name = table.upper()
                    columns = self._columns(cursor, name)
                    exists = bool(columns)
                    if frame.empty and not exists:
                        continue
                    staging = f"{name}_SWAP_{uuid.uuid4().hex[:8].upper()}"
                    staged[name] = (staging, exists)
                    upper = frame.rename(columns=str.upper)
                    if exists:
                        cursor.execute(
                            f"CREATE TABLE {schema}.{staging} LIKE {schema}.{name} COPY GRANTS"
                        )
                        for statement in add_column_statements(
                            f"{schema}.{staging}", upper, columns
                        ):
                            cursor.execute(statement)
                    if not upper.empty:
                        pandas_tools.write_pandas(
                            conn=connection,
                            df=upper,
                            table_name=staging,
                            schema=schema,
                            quote_identifiers=True,
                            use_logical_type=True,
                            auto_create_table=not exists,
                        )
                cursor.execute("BEGIN")
                try:
                    for name, (staging, exists) in staged.items():
                        cursor.execute(
                            f"ALTER TABLE {schema}.{name} SWAP WITH {schema}.{staging}"
                            if exists
                            else f"ALTER TABLE {schema}.{staging} RENAME TO {schema}.{name}"
                        )
                    cursor.execute("COMMIT")
                except BaseException:
                    cursor.execute("ROLLBACK")
                    raise
            finally:
                for staging, _ in staged.values():
                    cursor.execute(f"DROP TABLE IF EXISTS {schema}.{staging}")

    def _columns(self, cursor: Any, table: str) -> set[str]:
        """The table's column names, upper-case; none when it does not exist."""
        rows = cursor.execute(
            "select column_name from information_schema.columns"
            f" where table_schema = '{self.schema_name.upper()}' and table_name = '{table}'"
        ).fetchall()
        return {row[0].upper() for row in rows}

    def execute(self, setup: Sequence[str], transaction: Sequence[str]) -> None:
        with self.snowflake.get_connection() as connection, closing(connection.cursor()) as cursor:
            for statement in setup:
                cursor.execute(statement)
            cursor.execute("BEGIN")
            try:
                for statement in transaction:
                    cursor.execute(statement)
                cursor.execute("COMMIT")
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
