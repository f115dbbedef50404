"""Whole-table outputs (indicators, levels, profile, the three backtest tables) are replaced
atomically: on DuckDB in one transaction, on Snowflake (fakesnow) through staging tables swapped
in. A reader never sees an empty table or a new set beside an old one, and a failed write leaves
the old tables as they were."""

import threading
from collections.abc import Iterator

import duckdb
import fakesnow
import pandas as pd
import pytest
import snowflake.connector
from dagster_duckdb import DuckDBResource
from dagster_snowflake import SnowflakeResource

from crypto_assets.resources import DUCKDB_CONFIG
from crypto_assets.storage.warehouse_duckdb import DuckDBWarehouse
from crypto_assets.storage.warehouse_snowflake import SnowflakeWarehouse, add_column_statements
from crypto_assets_tests.fakesnow_swap import emulate_swap

# fakesnow's own DuckDB-to-Arrow copy warns on every query; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:Arrow output on a DB-API result:UserWarning")

SET = ("btcusdt_backtests", "btcusdt_backtest_trades", "btcusdt_backtest_equity")


def generation_set(generation: int, rows: tuple[int, int, int]) -> dict[str, pd.DataFrame]:
    """The three tables of one rebuild, each row tagged with the rebuild's generation."""
    return {
        table: pd.DataFrame(
            {"generation": [generation] * count, "value": [float(i) for i in range(count)]}
        )
        for table, count in zip(SET, rows, strict=True)
    }


def duckdb_warehouse(tmp_path) -> DuckDBWarehouse:
    return DuckDBWarehouse(
        duckdb=DuckDBResource(
            database=str(tmp_path / "cryptodb.duckdb"), connection_config=DUCKDB_CONFIG
        ),
        schema_name="cryptoschema",
    )


def read_set(connection: duckdb.DuckDBPyConnection) -> tuple:
    """Rows and generations of the three tables, read in one snapshot (one transaction)."""
    connection.begin()
    seen = tuple(
        connection.execute(
            f"select count(*), min(generation), max(generation) from cryptoschema.{table}"
        ).fetchone()
        for table in SET
    )
    connection.commit()
    return seen


def read_once(warehouse: DuckDBWarehouse) -> tuple:
    with warehouse.duckdb.get_connection() as connection:
        return read_set(connection)


ROWS = {1: (3, 5, 70_000), 2: (4, 6, 80_000)}
"""Rows of (backtests, trades, equity) per generation; equity is large so each rebuild takes
long enough for the reader to poll inside it."""


def test_a_reader_sees_the_old_set_or_the_new_set_never_empty_or_mixed(tmp_path):
    warehouse = duckdb_warehouse(tmp_path)
    warehouse.replace_tables(generation_set(1, ROWS[1]))
    expected = {
        1: ((3, 1, 1), (5, 1, 1), (70_000, 1, 1)),
        2: ((4, 2, 2), (6, 2, 2), (80_000, 2, 2)),
    }
    assert read_once(warehouse) == expected[1]

    seen: list[tuple] = []
    done = threading.Event()

    def poll() -> None:
        # A connection of its own, held open: another thread of the process reading the file
        # (a process cannot open a DuckDB file another one writes).
        with warehouse.duckdb.get_connection() as connection:
            while not done.is_set():
                seen.append(read_set(connection))

    reader = threading.Thread(target=poll)
    reader.start()
    try:
        for rebuild in range(12):
            generation = 2 if rebuild % 2 == 0 else 1
            warehouse.replace_tables(generation_set(generation, ROWS[generation]))
    finally:
        done.set()
        reader.join()

    assert read_once(warehouse) == expected[1]
    assert len(seen) >= 12
    assert set(seen) == {expected[1], expected[2]}


class Unconvertible:
    def __str__(self) -> str:
        raise ValueError("no text for this value")


@pytest.mark.faults
def test_a_failed_write_leaves_every_table_of_the_set_as_it_was(tmp_path):
    warehouse = duckdb_warehouse(tmp_path)
    warehouse.replace_tables(generation_set(1, ROWS[1]))
    broken = generation_set(2, ROWS[2])
    # A value DuckDB cannot convert: the trades fail after the backtests were already replaced
    # inside the transaction.
    broken["btcusdt_backtest_trades"]["value"] = [Unconvertible()] * 6
    with pytest.raises(duckdb.Error, match="no text for this value"):
        warehouse.replace_tables(broken)
    assert read_once(warehouse) == ((3, 1, 1), (5, 1, 1), (70_000, 1, 1))


def test_new_columns_reach_the_duckdb_table(tmp_path):
    warehouse = duckdb_warehouse(tmp_path)
    warehouse.replace_tables({"btcusdt_backtests": pd.DataFrame({"sharpe": [1.5]})})
    warehouse.replace_tables(
        {"btcusdt_backtests": pd.DataFrame({"sharpe": [0.5, 2.0], "profit_factor": [1.25, 3.0]})}
    )
    assert warehouse.query(
        "select sharpe, profit_factor from cryptoschema.btcusdt_backtests order by sharpe"
    ) == [(0.5, 1.25), (2.0, 3.0)]


# Snowflake, on fakesnow, with the SWAP carried out as renames (fakesnow has none).


@pytest.fixture
def fake_snowflake(monkeypatch) -> Iterator[list[str]]:
    statements = emulate_swap(monkeypatch)
    with fakesnow.patch():
        connection = snowflake.connector.connect()
        connection.cursor().execute("CREATE DATABASE CRYPTODB")
        connection.cursor().execute("CREATE SCHEMA CRYPTODB.CRYPTOSCHEMA")
        for table in SET:
            connection.cursor().execute(
                f"CREATE TABLE CRYPTODB.CRYPTOSCHEMA.{table.upper()}"
                ' (GENERATION NUMBER(38, 0), "VALUE" FLOAT)'
            )
        connection.close()
        statements.clear()
        yield statements


def snowflake_warehouse() -> SnowflakeWarehouse:
    return SnowflakeWarehouse(
        snowflake=SnowflakeResource(
            account="fake", user="fake", password="fake", database="CRYPTODB"
        ),
        schema_name="CRYPTOSCHEMA",
    )


def snowflake_set(warehouse: SnowflakeWarehouse) -> tuple:
    return tuple(
        tuple(
            warehouse.query(
                "select count(*), min(generation), max(generation)"
                f" from CRYPTOSCHEMA.{table.upper()}"
            )[0]
        )
        for table in SET
    )


def staging_tables(warehouse: SnowflakeWarehouse) -> list[tuple]:
    return warehouse.query(
        "select table_name from information_schema.tables"
        " where table_schema = 'CRYPTOSCHEMA' and table_name like '%_SWAP_%'"
    )


def test_snowflake_swaps_staging_tables_in_one_transaction(fake_snowflake):
    warehouse = snowflake_warehouse()
    warehouse.replace_tables(generation_set(1, (3, 5, 7)))
    assert snowflake_set(warehouse) == ((3, 1, 1), (5, 1, 1), (7, 1, 1))
    fake_snowflake.clear()

    warehouse.replace_tables(generation_set(2, (4, 6, 8)))
    # write_pandas's own statements do not reach the cursor on fakesnow; reading columns does.
    ddl = [statement for statement in fake_snowflake if not statement.startswith("select")]

    assert snowflake_set(warehouse) == ((4, 2, 2), (6, 2, 2), (8, 2, 2))
    stagings = [statement.split()[2] for statement in ddl if statement.startswith("CREATE TABLE")]
    assert len(stagings) == 3
    assert ddl == [
        *(
            f"CREATE TABLE {staging} LIKE CRYPTOSCHEMA.{table.upper()} COPY GRANTS"
            for staging, table in zip(stagings, SET, strict=True)
        ),
        "BEGIN",
        *(
            f"ALTER TABLE CRYPTOSCHEMA.{table.upper()} SWAP WITH {staging}"
            for staging, table in zip(stagings, SET, strict=True)
        ),
        "COMMIT",
        *(f"DROP TABLE IF EXISTS {staging}" for staging in stagings),
        "COMMIT",  # dagster-snowflake commits as it closes the connection
    ]
    assert staging_tables(warehouse) == []


@pytest.mark.faults
def test_snowflake_failed_staging_leaves_the_tables_and_no_staging_behind(fake_snowflake):
    warehouse = snowflake_warehouse()
    warehouse.replace_tables(generation_set(1, (3, 5, 7)))
    fake_snowflake.clear()
    broken = generation_set(2, (4, 6, 8))
    broken["btcusdt_backtest_equity"]["value"] = ["not a number"] * 8
    # fakesnow's write_pandas raises DuckDB's error where Snowflake's COPY would raise its own.
    with pytest.raises(Exception, match="'not a number'"):
        warehouse.replace_tables(broken)
    assert snowflake_set(warehouse) == ((3, 1, 1), (5, 1, 1), (7, 1, 1))
    assert staging_tables(warehouse) == []
    assert "BEGIN" not in fake_snowflake


def test_snowflake_creates_a_missing_table_and_adds_new_columns(fake_snowflake):
    warehouse = snowflake_warehouse()
    warehouse.replace_tables(
        {
            "btcusdt_backtests": pd.DataFrame(
                {"generation": [1, 1], "value": [0.5, 2.0], "profit_factor": [1.25, 3.0]}
            ),
            "btcusdt_levels": pd.DataFrame({"price": [100.0], "kind": ["support"]}),
        }
    )
    assert warehouse.query(
        "select generation, value, profit_factor from CRYPTOSCHEMA.BTCUSDT_BACKTESTS order by 2"
    ) == [(1, 0.5, 1.25), (1, 2.0, 3.0)]
    assert warehouse.query("select price, kind from CRYPTOSCHEMA.BTCUSDT_LEVELS") == [
        (100.0, "support")
    ]


def test_add_column_statements_type_new_columns_from_the_frame():
    frame = pd.DataFrame(
        {
            "SHARPE": [1.0],
            "TRADES": [3],
            "SELECTED": [True],
            "START": pd.to_datetime(["2024-01-01"]),
            "EXIT_REASON": ["signal"],
        }
    )
    assert add_column_statements("S.T", frame, {"SHARPE"}) == [
        'ALTER TABLE S.T ADD COLUMN "TRADES" NUMBER(38, 0)',
        'ALTER TABLE S.T ADD COLUMN "SELECTED" BOOLEAN',
        'ALTER TABLE S.T ADD COLUMN "START" TIMESTAMP_NTZ',
        'ALTER TABLE S.T ADD COLUMN "EXIT_REASON" VARCHAR',
    ]
