"""The dashboard's logic without a browser: its queries against a real warehouse (candles loaded
through the lineage, analytics tables of the contract filled by the test), and the page through
Streamlit's AppTest, including the bad inputs it must explain instead of failing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import date, datetime
from pathlib import Path

import duckdb
import fakesnow
import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from crypto_assets.dashboard import app_path
from crypto_assets.dashboard.connection import (
    BUSY_PAUSE_SECONDS,
    READ_RETRY_DELAYS,
    DuckDBWarehouse,
    WarehouseBusy,
    snowflake_connector_settings,
)
from crypto_assets.dashboard.health import daily_health, failed_check_days
from crypto_assets.dashboard.queries import MarketQueries
from crypto_assets.klines.frames import day_start_ms
from crypto_assets_tests import dashboard_warehouse as fixture_tables
from crypto_assets_tests.binance_standin import BinanceStandIn
from crypto_assets_tests.conftest import synthetic_days

DATABASE = "cryptodb.duckdb"


@pytest.fixture(scope="module")
def homes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Three warehouses: candles of 2024-01-01..03 with and without the analytics tables,
    and an empty folder."""
    rows = synthetic_days("2024-01-01", 3)
    base_only = tmp_path_factory.mktemp("base_only")
    with BinanceStandIn(
        {("BTCUSDT", "1m"): rows}, clock_ms=lambda: day_start_ms("2024-01-04") + 30_000
    ) as standin:
        assert fixture_tables.load_days(base_only, standin.url, "2024-01-01", "2024-01-03").success
    full = tmp_path_factory.mktemp("full")
    shutil.copy(base_only / DATABASE, full / DATABASE)
    base = fixture_tables.read_base(full / DATABASE)
    fixture_tables.write_tables(full / DATABASE, fixture_tables.analytics_tables(base))
    return {"full": full, "base_only": base_only, "empty": tmp_path_factory.mktemp("empty")}


@pytest.fixture(scope="module")
def base(homes: dict[str, Path]) -> pd.DataFrame:
    return fixture_tables.read_base(homes["full"] / DATABASE)


def queries(home: Path, **kwargs) -> MarketQueries:
    return MarketQueries(DuckDBWarehouse(path=home / DATABASE), "btcusdt", **kwargs)


def pandas_bars(base: pd.DataFrame, rule: str) -> pd.DataFrame:
    return fixture_tables.bars(base, rule).reset_index(drop=True)


def test_15m_candles_are_resampled_in_sql_like_pandas(homes, base):
    view = queries(homes["full"]).read_market("15m", custom=(date(2024, 1, 2), date(2024, 1, 2)))
    expected = pandas_bars(base[base["open_time"].dt.date == date(2024, 1, 2)], "15min")
    assert len(view.candles) == 96
    assert view.plan.source == "base" and view.plan.notes == []
    assert view.candles["open_time"].tolist() == expected["open_time"].tolist()
    for column in ("open", "high", "low", "close", "volume", "candle_count"):
        assert view.candles[column].tolist() == pytest.approx(expected[column].tolist()), column


def test_4h_candles_come_from_the_bar_table_else_are_resampled_saying_so(homes, base):
    from_table = queries(homes["full"]).read_market("4h")
    resampled = queries(homes["base_only"]).read_market("4h")
    expected = pandas_bars(base, "4h")
    assert from_table.plan.source == "bars_4h" and from_table.plan.notes == []
    assert resampled.plan.source == "base"
    assert resampled.plan.notes == [
        "Table btcusdt_4h is missing, so 4h candles are resampled from the base table:"
        " run `crypto-assets analytics`."
    ]
    for view in (from_table, resampled):
        assert len(view.candles) == 18
        assert view.candles["close"].tolist() == pytest.approx(expected["close"].tolist())
        assert view.candles["high"].tolist() == pytest.approx(expected["high"].tolist())


def test_a_range_over_the_candle_limit_is_drawn_coarser_and_says_so(homes):
    capped = queries(homes["full"], max_candles=1000).read_market("1m")
    assert len(capped.candles) == 288  # 3 days of 15m: 4,320 1m candles exceed 1,000
    assert capped.plan.timeframe == "15m"
    assert capped.plan.notes == [
        "Showing 15m candles: 1m over this range would be 4,320 candles, over the 1,000"
        " the page draws."
    ]
    five_years = queries(homes["full"]).plan(
        "15m", datetime(2020, 1, 1), datetime(2025, 1, 1), tables={"base"}
    )
    assert five_years.timeframe == "1d"  # 4h would still be 10,962 candles


def test_header_quote_is_the_newest_candle_and_its_24h_change(homes, base):
    view = queries(homes["full"]).read_market("1h")
    last = base.iloc[-1]
    day_before = base[base["open_time"] == last["open_time"] - pd.Timedelta(hours=24)].iloc[0]
    assert view.quote.open_time == pd.Timestamp("2024-01-03 23:59")
    assert view.quote.close == last["close"]
    assert view.quote.close_24h_ago == day_before["close"]
    assert view.quote.change_24h == pytest.approx(last["close"] / day_before["close"] - 1)


@pytest.fixture
def page(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Path], AppTest]]:
    """The page as AppTest runs it, over the warehouse under a given CRYPTO_ASSETS_HOME."""

    def run(home: Path) -> AppTest:
        monkeypatch.setenv("CRYPTO_ASSETS_HOME", str(home))
        st.cache_data.clear()
        st.cache_resource.clear()
        return AppTest.from_file(str(app_path()), default_timeout=60).run()

    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    yield run
    st.cache_data.clear()
    st.cache_resource.clear()


def texts(at: AppTest) -> str:
    parts = [element.value for kind in ("info", "warning", "error") for element in at.get(kind)]
    return "\n".join(str(part) for part in parts)


def test_page_shows_the_warehouse_close_chart_and_backtests(page, homes, base):
    at = page(homes["full"])
    assert not at.exception and not at.error
    metrics = {metric.label: metric.value for metric in at.metric}
    last, day_before = base["close"].iloc[-1], base["close"].iloc[-1 - 1440]
    assert metrics["Last close"] == f"{last:,.2f}"
    assert metrics["24 h change"] == f"{last / day_before - 1:+.2%}"
    assert metrics["Open time (UTC)"] == "2024-01-03 23:59"
    assert "crypto-assets analytics" not in texts(at)
    # market, walk-forward equity, trades, parameter heatmap, data health
    assert len(at.get("plotly_chart")) == 5
    ranked = at.dataframe[0].value
    assert ranked["strategy"].tolist() == ["sma_cross", "buy_and_hold", "rsi_reversion"]
    sma = ranked.iloc[0]
    assert sma["walk-forward return %"] == pytest.approx(5.0)
    assert sma["buy and hold return %"] == pytest.approx(2.0)
    assert sma["excess over buy and hold %"] == pytest.approx(3.0)
    assert sma["selected set (in-sample)"] == "fast 10, slow 30"
    # The chart opens on the best walk-forward that traded, never on a flat line.
    chart_of = next(box for box in at.selectbox if box.label == "Equity of")
    assert chart_of.value == ("sma_cross", "1h")
    every_set = at.dataframe[1].value
    selected = every_set[(every_set["strategy"] == "rsi_reversion")].iloc[0]
    assert selected["sharpe (in sample)"] == 4.5 and selected["sharpe (out of sample)"] == 4.5
    assert len(every_set) == 5


def test_missing_analytics_tables_say_what_to_run(page, homes):
    at = page(homes["base_only"])
    assert not at.exception and not at.error
    shown = texts(at)
    assert (
        "Not in the warehouse yet: `btcusdt_indicators_1h`, `btcusdt_levels`,"
        " `btcusdt_volume_profile`: run `crypto-assets analytics`" in shown
    )
    assert "No backtest results in the warehouse yet: run `crypto-assets analytics`" in shown
    assert len(at.get("plotly_chart")) == 2  # market (candles, volume, pressure) and health


def test_no_warehouse_or_no_candles_says_how_to_load(page, homes, tmp_path):
    at = page(homes["empty"])
    assert not at.exception and not at.error
    assert "There is no warehouse yet." in texts(at)
    assert str(homes["empty"]) not in texts(at)  # the server's paths stay on the server
    assert "make materialize DATE=YYYY-MM-DD" in texts(at)
    with duckdb.connect(str(tmp_path / DATABASE)) as connection:
        connection.execute("CREATE SCHEMA cryptoschema")
    at = page(tmp_path)
    assert not at.exception and not at.error
    assert "The warehouse has no BTCUSDT candles yet." in texts(at)


def test_the_browser_gets_a_generic_message_and_the_server_log_the_details(
    page, homes, monkeypatch, caplog
):
    monkeypatch.setenv("CRYPTO_ASSETS_ENV", "prod")
    for name in ("SNOWFLAKE_ACCOUNT", "SNOWFLAKE_USER", "SNOWFLAKE_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    with caplog.at_level("ERROR"):
        at = page(homes["empty"])
    assert not at.exception
    assert texts(at) == (
        "The dashboard cannot reach the warehouse; its log on the server says why."
    )
    assert "the dashboard in prod needs: SNOWFLAKE_ACCOUNT" in caplog.text
    assert st.get_option("client.showErrorDetails") == "none"  # no traceback in the browser


def test_a_broken_dagster_instance_is_reported_without_its_path_or_error(tmp_path, caplog):
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("storage: {sqlite: {base_dir: [not, a, path]}}\n")
    with caplog.at_level("ERROR"):
        failed, reason = failed_check_days(datetime(2024, 1, 1), {"DAGSTER_HOME": str(home)})
    assert failed == {}
    assert reason == (
        "could not read check results from the Dagster instance (see the server's log)"
    )
    assert f"could not read check results from the Dagster instance at {home}" in caplog.text


def test_a_range_without_candles_says_what_the_warehouse_holds(page, homes):
    at = page(homes["full"])
    at.sidebar.selectbox[1].set_value("Custom dates").run()
    at.sidebar.date_input[0].set_value((date(2023, 5, 1), date(2023, 5, 3))).run()
    assert not at.exception and not at.error
    assert (
        "No candles between 2023-05-01 00:00 and 2023-05-04 00:00 UTC; the warehouse holds"
        " 2024-01-01 to 2024-01-03 23:59. Pick another range." in texts(at)
    )


def hold_write_lock(database: Path) -> subprocess.Popen:
    """Another process holding the file the way a load does (read-write), until stdin closes."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('held', flush=True);"
            " sys.stdin.read()",
            str(database),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout.readline().strip() == "held"
    return process


def test_a_read_while_a_load_holds_the_file_retries_briefly_then_reports_busy(homes):
    slept: list[float] = []
    now = [100.0]
    warehouse = DuckDBWarehouse(
        path=homes["full"] / DATABASE, sleep=slept.append, clock=lambda: now[0]
    )
    writer = hold_write_lock(warehouse.path)
    try:
        with pytest.raises(WarehouseBusy, match="a load is running"), warehouse.session():
            pass
    finally:
        writer.communicate("")
    assert slept == list(READ_RETRY_DELAYS)
    now[0] += BUSY_PAUSE_SECONDS - 0.1  # the page's next reads in this pause do not wait
    with pytest.raises(WarehouseBusy), warehouse.session():
        pass
    assert slept == list(READ_RETRY_DELAYS)
    now[0] += 0.2
    with warehouse.session() as session:
        assert session.frame("SELECT COUNT(*) AS n FROM cryptoschema.btcusdt")["n"][0] == 4320


def test_page_keeps_its_last_data_while_a_load_holds_the_file(page, homes, base):
    at = page(homes["full"])
    writer = hold_write_lock(homes["full"] / DATABASE)
    try:
        st.cache_data.clear()
        at.run()
    finally:
        writer.communicate("")
    assert not at.exception and not at.error
    assert (
        "the pipeline is writing to the warehouse (a load is running); showing what was read at"
        in texts(at)
    )
    assert {metric.label: metric.value for metric in at.metric}["Last close"] == (
        f"{base['close'].iloc[-1]:,.2f}"
    )


def test_failed_check_days_come_from_the_dagster_instance(tmp_path):
    import dagster as dg

    rows = synthetic_days("2024-01-01", 2)
    broken = list(rows[1440 + 60])
    broken[2] = str(float(broken[3]) - 1)  # high below low on 2024-01-02 01:00
    home = tmp_path / "dagster_home"
    home.mkdir()
    with BinanceStandIn(
        {("BTCUSDT", "1m"): rows}, clock_ms=lambda: day_start_ms("2024-01-03") + 30_000
    ) as standin:
        standin.replace_kline("BTCUSDT", "1m", int(broken[0]), broken)
        instance = dg.DagsterInstance.from_config(str(home))
        try:
            fixture_tables.load_days(tmp_path, standin.url, "2024-01-01", "2024-01-02", instance)
        finally:
            instance.dispose()
    failed, reason = failed_check_days(datetime(2024, 1, 1), {"DAGSTER_HOME": str(home)})
    assert reason is None
    assert failed == {
        "2024-01-02": ["high_at_or_above_open_and_close", "low_at_or_below_open_and_close"]
    }
    counts = pd.DataFrame({"trading_day": [pd.Timestamp("2024-01-01")], "candles": [1440]})
    days = daily_health(
        counts,
        failed,
        1,
        datetime(2024, 1, 3, 0, 30),
        (pd.Timestamp("2024-01-01"), pd.Timestamp("2024-01-03")),
    )
    assert days["candles"].tolist() == [1440, 0, 0]
    assert days["expected"].tolist() == [1440, 1440, 30]
    assert days["failed"].tolist() == [False, True, False]
    assert failed_check_days(datetime(2024, 1, 1), {})[1] == (
        "no Dagster instance (DAGSTER_HOME is not set or absent): check results unknown"
    )


PIPELINE_AND_DASHBOARD = {
    "SNOWFLAKE_ACCOUNT": "acme-1",
    "SNOWFLAKE_USER": "CRYPTO_PIPELINE_SVC",
    "SNOWFLAKE_WAREHOUSE": "CRYPTO_WH",
    "SNOWFLAKE_PASSWORD": "pipeline-secret",
    "SNOWFLAKE_PRIVATE_KEY_PATH": "/run/secrets/pipeline.p8",
    "SNOWFLAKE_ROLE": "CRYPTO_PIPELINE",
    "CRYPTO_ASSETS_DASHBOARD_SNOWFLAKE_USER": "CRYPTO_DASHBOARD_SVC",
    "CRYPTO_ASSETS_DASHBOARD_SNOWFLAKE_PRIVATE_KEY_PATH": "/run/secrets/dashboard.p8",
    "CRYPTO_ASSETS_DASHBOARD_SNOWFLAKE_PRIVATE_KEY_PASSWORD": "dashboard-key-pass",
}


def test_prod_reads_snowflake_as_its_own_user_with_the_read_only_role():
    settings = snowflake_connector_settings(PIPELINE_AND_DASHBOARD)
    assert settings == {
        "account": "acme-1",
        "user": "CRYPTO_DASHBOARD_SVC",
        "warehouse": "CRYPTO_WH",
        "database": "CRYPTODB",
        "role": "CRYPTO_DASHBOARD",
        "private_key_file": "/run/secrets/dashboard.p8",
        "private_key_file_pwd": "dashboard-key-pass",
    }
    custom_role = PIPELINE_AND_DASHBOARD | {"CRYPTO_ASSETS_DASHBOARD_ROLE": "R"}
    assert snowflake_connector_settings(custom_role)["role"] == "R"
    with pytest.raises(ValueError) as refused:
        snowflake_connector_settings({"SNOWFLAKE_ACCOUNT": "a", "SNOWFLAKE_USER": "u"})
    assert str(refused.value) == (
        "the dashboard in prod needs: SNOWFLAKE_WAREHOUSE, CRYPTO_ASSETS_DASHBOARD_SNOWFLAKE_USER,"
        " CRYPTO_ASSETS_DASHBOARD_SNOWFLAKE_PRIVATE_KEY_PATH or"
        " CRYPTO_ASSETS_DASHBOARD_SNOWFLAKE_PRIVATE_KEY or"
        " CRYPTO_ASSETS_DASHBOARD_SNOWFLAKE_PASSWORD"
    )


@pytest.mark.parametrize(
    ("override", "complaint"),
    [
        (
            {"CRYPTO_ASSETS_DASHBOARD_SNOWFLAKE_USER": "crypto_pipeline_svc"},
            "CRYPTO_ASSETS_DASHBOARD_SNOWFLAKE_USER='crypto_pipeline_svc' is the pipeline's user",
        ),
        (
            {"CRYPTO_ASSETS_DASHBOARD_ROLE": "CRYPTO_PIPELINE"},
            "CRYPTO_ASSETS_DASHBOARD_ROLE='CRYPTO_PIPELINE' can write or administer the warehouse",
        ),
        (
            {"CRYPTO_ASSETS_DASHBOARD_ROLE": "LOADER", "SNOWFLAKE_ROLE": "loader"},
            "CRYPTO_ASSETS_DASHBOARD_ROLE='LOADER' can write or administer the warehouse",
        ),
        (
            {"CRYPTO_ASSETS_DASHBOARD_ROLE": "sysadmin"},
            "CRYPTO_ASSETS_DASHBOARD_ROLE='sysadmin' can write or administer the warehouse",
        ),
    ],
)
def test_the_dashboard_refuses_the_pipelines_user_or_a_writing_role(override, complaint):
    with pytest.raises(ValueError) as refused:
        snowflake_connector_settings(PIPELINE_AND_DASHBOARD | override)
    assert str(refused.value).startswith(complaint)


def test_crypto_assets_dashboard_will_not_start_as_the_pipeline(tmp_path):
    environ = {
        **os.environ,
        **PIPELINE_AND_DASHBOARD,
        "CRYPTO_ASSETS_ENV": "prod",
        "CRYPTO_ASSETS_DASHBOARD_ROLE": "CRYPTO_PIPELINE",
    }
    started = subprocess.run(
        [sys.executable, "-m", "crypto_assets.cli", "dashboard", "--port", "9"],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert started.returncode == 2
    assert started.stderr.startswith(
        "crypto-assets: CRYPTO_ASSETS_DASHBOARD_ROLE='CRYPTO_PIPELINE' can write or administer"
    )


@pytest.mark.filterwarnings("ignore:Arrow output on a DB-API result:UserWarning")
def test_snowflake_answers_the_queries_like_duckdb(base):
    """fakesnow (patch mode: test_sql_scripts owns the process's one fakesnow server, which
    fakesnow 0.12 can start once) holding six hours of candles and their 4h bar table: the
    Snowflake reader resamples and reads them as pandas does."""
    import snowflake.connector

    from crypto_assets.dashboard.connection import SnowflakeWarehouse

    day = base[base["open_time"].between("2024-01-02 00:00", "2024-01-02 05:59")]
    columns = ["open_time", "close_time", "open", "high", "low", "close", "volume"]
    columns += ["taker_base_vol", "num_trades"]
    bars_4h = fixture_tables.bars(day, "4h")
    with fakesnow.patch():
        settings = {"account": "acme-1", "user": "analyst", "password": "x", "database": "CRYPTODB"}
        with snowflake.connector.connect(**settings, paramstyle="qmark") as connection:
            cursor = connection.cursor()
            cursor.execute("CREATE SCHEMA IF NOT EXISTS CRYPTODB.CRYPTOSCHEMA")
            for table, frame, names in (
                ("BTCUSDT", day, columns),
                ("BTCUSDT_4H", bars_4h, [*columns[:1], *columns[2:], "candle_count"]),
            ):
                types = ", ".join(
                    f"{name} {'TIMESTAMP_NTZ' if 'time' in name else 'DOUBLE'}" for name in names
                )
                cursor.execute(f"CREATE TABLE CRYPTODB.CRYPTOSCHEMA.{table} ({types})")
                cursor.executemany(
                    f"INSERT INTO CRYPTODB.CRYPTOSCHEMA.{table} VALUES"
                    f" ({', '.join('?' * len(names))})",
                    [
                        [
                            value.to_pydatetime() if hasattr(value, "to_pydatetime") else value
                            for value in row
                        ]
                        for row in frame[names].itertuples(index=False)
                    ],
                )
        # fakesnow cannot parse USE SECONDARY ROLES; test_secrets_and_inputs checks it is sent
        warehouse = SnowflakeWarehouse(
            settings=settings, schema="CRYPTOSCHEMA", first_statements=()
        )
        snowflake_queries = MarketQueries(warehouse, "btcusdt")
        custom = (date(2024, 1, 2), date(2024, 1, 2))
        answers = {
            timeframe: snowflake_queries.read_market(timeframe, custom=custom)
            for timeframe in ("15m", "4h")
        }
    for timeframe, answer in answers.items():
        expected = fixture_tables.bars(day, "15min" if timeframe == "15m" else "4h")
        assert len(answer.candles) == {"15m": 24, "4h": 2}[timeframe]
        assert answer.candles["open_time"].tolist() == expected["open_time"].tolist()
        for column in ("open", "high", "low", "close", "volume", "candle_count"):
            assert answer.candles[column].tolist() == pytest.approx(expected[column].tolist())
    assert answers["4h"].plan.source == "bars_4h" and answers["15m"].plan.source == "base"
    assert answers["15m"].tables == {"base", "bars_4h"}
    assert answers["15m"].quote.close == day["close"].iloc[-1]
