"""Bars resampled in the warehouse equal an independent pandas resample of the source candles,
on DuckDB and on Snowflake (fakesnow), for 1m and 1h base tables."""

from datetime import datetime, timedelta
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pytest

from crypto_assets.analytics.bars import bars_rebuild, complete_bars_sql
from crypto_assets.analytics.indicators import indicators
from crypto_assets_tests.analytics_data import warehouse_candles
from crypto_assets_tests.binance_standin import load_klines_csv, shared_data_dir
from crypto_assets_tests.conftest import synthetic_days
from crypto_assets_tests.test_sql_scripts import CANDLES, SQL_DIR, connect, insert_candles
from crypto_assets_tests.test_sql_scripts import statements as sql_statements

# fakesnow's own DuckDB-to-Arrow copy warns on every query; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:Arrow output on a DB-API result:UserWarning")
PRICES = ["open", "high", "low", "close"]
SUMS = ["volume", "quote_asset_volume", "taker_base_vol", "taker_quote_vol"]
RULES = {"1h": "1h", "4h": "4h", "1d": "1D"}


def pandas_bars(candles: pd.DataFrame, timeframe: str) -> pd.DataFrame:
    """The reference: pandas' own resample of the candles, empty buckets dropped."""
    indexed = candles.set_index("open_time").sort_index()
    grouped = indexed.resample(RULES[timeframe])
    frame = grouped.agg(
        {
            "symbol": "first",
            "open": "first",
            "high": "max",
            "low": "min",
            "close": "last",
            **dict.fromkeys(SUMS, "sum"),
            "num_trades": "sum",
        }
    )
    frame["candle_count"] = grouped.size()
    return frame[frame["candle_count"] > 0].reset_index()


def duckdb_bars(
    candles: pd.DataFrame, timeframe: str, interval: timedelta, first_day: str, end_day: str
) -> pd.DataFrame:
    with duckdb.connect() as connection:
        connection.register("candles", candles)
        connection.execute("create table btcusdt as select * from candles")
        data_end = candles["open_time"].max().to_pydatetime() + interval
        rebuild = bars_rebuild(
            "btcusdt",
            f"btcusdt_{timeframe}",
            timeframe,
            "duckdb",
            datetime.fromisoformat(first_day),
            datetime.fromisoformat(end_day),
            data_end,
        )
        connection.execute(rebuild.create)
        for statement in rebuild.replace:
            connection.execute(statement)
        return connection.execute(f"select * from btcusdt_{timeframe} order by open_time").fetchdf()


def assert_bars_equal(
    actual: pd.DataFrame, expected: pd.DataFrame, same_base_interval: bool = True
) -> None:
    assert actual["open_time"].tolist() == expected["open_time"].tolist()
    for column in PRICES:  # prices are picked, never computed: exactly equal
        assert actual[column].tolist() == expected[column].tolist(), column
    for column in SUMS:
        np.testing.assert_allclose(actual[column], expected[column], rtol=1e-12)
    assert actual["num_trades"].tolist() == expected["num_trades"].tolist()
    if same_base_interval:
        assert actual["candle_count"].tolist() == expected["candle_count"].tolist()


@pytest.fixture(scope="module")
def real_hourly() -> pd.DataFrame:
    path = shared_data_dir() / "BTCUSDT-1h-2024-01-01_2024-05-11.csv"
    if not path.exists():
        pytest.skip(f"{path} is absent: real Binance klines are not available in this clone")
    return warehouse_candles(load_klines_csv(path), "1h")


@pytest.mark.parametrize("timeframe", ["1h", "4h", "1d"])
def test_bars_from_the_real_hourly_file_equal_a_pandas_resample(
    real_hourly: pd.DataFrame, timeframe: str
) -> None:
    actual = duckdb_bars(real_hourly, timeframe, timedelta(hours=1), "2024-01-01", "2024-05-12")
    expected = pandas_bars(real_hourly, timeframe)
    assert len(expected) == {"1h": 3160, "4h": 790, "1d": 132}[timeframe]
    assert_bars_equal(actual, expected)
    # The file ends at 2024-05-11 15:00: that day's bar (and only it) is not yet whole.
    incomplete = actual.loc[~actual["is_complete"], "open_time"].dt.strftime("%Y-%m-%d %H:%M")
    if timeframe == "1d":
        assert incomplete.tolist() == ["2024-05-11 00:00"]
    else:
        assert incomplete.tolist() == []


def test_bars_from_1m_candles_equal_a_pandas_resample_and_flag_the_open_bucket() -> None:
    rows = synthetic_days("2024-03-01", 3)[: 2 * 1440 + 150]  # day 3 stops at 02:29
    candles = warehouse_candles(rows, "1m")
    for timeframe in ("1h", "4h", "1d"):
        actual = duckdb_bars(candles, timeframe, timedelta(minutes=1), "2024-03-01", "2024-03-04")
        assert_bars_equal(actual, pandas_bars(candles, timeframe))
        open_buckets = actual.loc[~actual["is_complete"], "open_time"].dt.strftime("%d %H:%M")
        assert (
            open_buckets.tolist()
            == {"1h": ["03 02:00"], "4h": ["03 00:00"], "1d": ["03 00:00"]}[timeframe]
        )


def test_rebuilding_a_day_replaces_only_that_day() -> None:
    candles = warehouse_candles(synthetic_days("2024-03-01", 2), "1m")
    with duckdb.connect() as connection:
        connection.register("candles", candles)
        connection.execute("create table btcusdt as select * from candles")
        data_end = datetime(2024, 3, 3)
        for first, end in (("2024-03-01", "2024-03-03"), ("2024-03-02", "2024-03-03")):
            rebuild = bars_rebuild(
                "btcusdt",
                "bars",
                "1h",
                "duckdb",
                datetime.fromisoformat(first),
                datetime.fromisoformat(end),
                data_end,
            )
            connection.execute(rebuild.create)
            for statement in rebuild.replace:
                connection.execute(statement)
        counts = connection.execute(
            "select cast(open_time as date), count(*) from bars group by 1 order by 1"
        ).fetchall()
    assert [count for _, count in counts] == [24, 24]


def test_a_1h_base_table_gives_the_same_daily_indicators_as_1m() -> None:
    minute = warehouse_candles(synthetic_days("2024-01-01", 40, seed=11), "1m")
    hourly = pandas_bars(minute, "1h")  # what Binance's 1h klines of the same minutes hold
    from_minutes = duckdb_bars(minute, "1d", timedelta(minutes=1), "2024-01-01", "2024-02-10")
    from_hours = duckdb_bars(hourly, "1d", timedelta(hours=1), "2024-01-01", "2024-02-10")
    assert_bars_equal(from_hours, from_minutes, same_base_interval=False)
    assert set(from_hours["candle_count"]) == {24}
    daily_from_minutes = indicators(from_minutes)
    daily_from_hours = indicators(from_hours)
    pd.testing.assert_frame_equal(daily_from_hours, daily_from_minutes, rtol=1e-12)
    assert daily_from_minutes["macd_signal"].notna().sum() == 40 - 33


def test_bars_sql_runs_on_snowflake(fakesnow_server: dict[str, Any]) -> None:
    """The same statements in Snowflake's dialect, through fakesnow's server and the real
    connector, against the tables sql/ creates, filled with test_sql_scripts' two days."""
    candles = pd.DataFrame(CANDLES).rename(columns=str.lower)
    with (
        connect(fakesnow_server) as connection,
        connection.cursor() as cursor,
    ):
        cursor.execute("create database cryptodb")
        cursor.execute("create schema cryptodb.cryptoschema")
        cursor.execute("use schema cryptodb.cryptoschema")
        for path in SQL_DIR.glob("0[25]_*.sql"):
            for statement in sql_statements(path):
                if statement.upper().startswith("CREATE TABLE"):
                    cursor.execute(statement)
        insert_candles(connection, CANDLES)
        for timeframe in ("1h", "4h", "1d"):
            rebuild = bars_rebuild(
                "cryptoschema.btcusdt",
                f"cryptoschema.btcusdt_{timeframe}",
                timeframe,
                "snowflake",
                datetime(2024, 1, 1),
                datetime(2024, 1, 3),
                datetime(2024, 1, 3),
            )
            cursor.execute(rebuild.create)
            cursor.execute("begin")
            for statement in rebuild.replace:
                cursor.execute(statement)
            cursor.execute("commit")
            cursor.execute(complete_bars_sql(f"cryptoschema.btcusdt_{timeframe}"))
            actual = cursor.fetch_pandas_all().rename(columns=str.lower)
            actual["open_time"] = pd.to_datetime(actual["open_time"])
            assert_bars_equal(actual, pandas_bars(candles, timeframe))
