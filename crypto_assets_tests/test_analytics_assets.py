"""The analytics assets over a local warehouse: every table of the contract, the charts on the
materializations and in the artifacts zone, float metadata, day-by-day bar rebuilds, and the
``crypto-assets analytics`` command recording its run for the UI."""

import base64
import io
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import matplotlib.image
import pandas as pd
import pytest

from crypto_assets.analytics.assets import btcusdt_bars
from crypto_assets.analytics.charts import candlestick_chart, equity_chart
from crypto_assets.resources import local_resources
from crypto_assets_tests.analytics_data import load_base_table, read_table
from crypto_assets_tests.conftest import synthetic_days
from crypto_assets_tests.lineage import LINEAGE

ROOT = Path(__file__).resolve().parents[1]
MAX_PNG_BYTES = 300 * 1024
# /work/notes/analytics_tables.md, the contract the dashboard reads.
CONTRACT = {
    "btcusdt_1h": "open_time symbol open high low close volume quote_asset_volume num_trades"
    " taker_base_vol taker_quote_vol candle_count is_complete",
    "btcusdt_indicators_1h": "open_time close sma_20 sma_50 sma_200 ema_12 ema_26 rsi_14 macd"
    " macd_signal macd_hist bb_upper bb_middle bb_lower atr_14 obv taker_buy_ratio"
    " net_taker_volume",
    "btcusdt_levels": "price kind timeframe touches strength first_touch last_touch last_close"
    " distance_pct",
    "btcusdt_volume_profile": "bin_low bin_high price volume taker_buy_volume taker_sell_volume"
    " is_poc in_value_area window_start window_end",
    "btcusdt_backtests": "strategy params timeframe sample start end total_return cagr sharpe"
    " sortino max_drawdown max_drawdown_days calmar win_rate trades exposure profit_factor"
    " avg_trade_return avg_bars_held max_consecutive_losses excess_return stop_loss_pct"
    " take_profit_pct position_size fee_bps slippage_bps selected",
    "btcusdt_backtest_trades": "strategy params timeframe sample entry_time entry_price"
    " exit_time exit_price trade_return exit_reason bars_held",
    "btcusdt_backtest_equity": "strategy params timeframe sample day equity drawdown",
}
CONTRACT["btcusdt_4h"] = CONTRACT["btcusdt_1d"] = CONTRACT["btcusdt_1h"]
CONTRACT["btcusdt_indicators_1d"] = CONTRACT["btcusdt_indicators_1h"]
DAYS = 8


def png_size(png: bytes) -> tuple[int, int]:
    """(width, height) of a PNG, decoded by matplotlib's reader."""
    pixels = matplotlib.image.imread(io.BytesIO(png), format="png")
    return pixels.shape[1], pixels.shape[0]


@dataclass
class Analysed:
    """A warehouse of DAYS days, analysed by ``crypto-assets analytics`` in a child process."""

    home: Path
    dagster_home: Path
    stdout: str

    def metadata(self, asset: str) -> dict[str, Any]:
        """The latest materialization's metadata, as the UI reads it from the instance."""
        with dg.DagsterInstance.from_config(str(self.dagster_home)) as instance:
            event = instance.get_latest_materialization_event(dg.AssetKey(asset))
        assert event is not None and event.asset_materialization is not None, asset
        return dict(event.asset_materialization.metadata)

    def runs(self) -> list[dg.DagsterRun]:
        with dg.DagsterInstance.from_config(str(self.dagster_home)) as instance:
            return list(instance.get_runs())


@pytest.fixture(scope="module")
def analysed(tmp_path_factory: pytest.TempPathFactory) -> Analysed:
    """What a user gets from `make analytics`: one Dagster run recorded in DAGSTER_HOME."""
    work = tmp_path_factory.mktemp("analytics")
    home, dagster_home = work / "data", work / "dagster_home"
    home.mkdir()
    dagster_home.mkdir()
    load_base_table(home, synthetic_days("2024-01-01", DAYS), "1m")
    env = {
        **os.environ,
        "CRYPTO_ASSETS_ENV": "local",
        "CRYPTO_ASSETS_HOME": str(home),
        "DAGSTER_HOME": str(dagster_home),
        "PYTHONPATH": str(ROOT),
    }
    done = subprocess.run(
        [sys.executable, "-m", "crypto_assets.cli", "analytics"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return Analysed(home, dagster_home, done.stdout)


def test_the_analytics_command_records_one_run_over_the_days_loaded(analysed: Analysed) -> None:
    assert f"Analytics over 2024-01-01..2024-01-0{DAYS}: run" in analysed.stdout
    runs = analysed.runs()
    assert [run.status for run in runs] == [dg.DagsterRunStatus.SUCCESS]
    assert runs[0].tags["dagster/asset_partition_range_start"] == "2024-01-01"
    assert runs[0].tags["dagster/asset_partition_range_end"] == f"2024-01-0{DAYS}"


def test_every_contract_table_holds_its_columns(analysed: Analysed) -> None:
    home = analysed.home
    for table, columns in CONTRACT.items():
        frame = read_table(home, table)
        assert set(columns.split()) <= set(frame.columns), table
        assert len(frame) > 0, table
    daily = read_table(home, "btcusdt_1d").sort_values("open_time")
    assert daily["open_time"].dt.strftime("%Y-%m-%d").tolist() == [
        f"2024-01-0{day}" for day in range(1, DAYS + 1)
    ]
    assert daily["candle_count"].tolist() == [1440] * DAYS
    assert daily["is_complete"].all()
    assert len(read_table(home, "btcusdt_1h")) == 24 * DAYS
    assert len(read_table(home, "btcusdt_4h")) == 6 * DAYS
    backtests = read_table(home, "btcusdt_backtests")
    # No calendar quarter begins after 2024-01-01: no walk-forward fold yet.
    assert set(backtests["sample"]) == {"full", "in_sample", "out_of_sample"}
    assert set(backtests["timeframe"]) == {"1d", "4h", "1h"}
    full = backtests[backtests["sample"] == "full"]
    assert set(full["start"]) == {pd.Timestamp("2024-01-01")}
    assert set(full["end"]) == {pd.Timestamp(f"2024-01-0{DAYS + 1}")}


def test_charts_are_attached_and_written_to_the_artifacts_zone(analysed: Analysed) -> None:
    home = analysed.home
    charts = analysed.metadata("btcusdt_market_charts")
    for timeframe in ("1d", "1h"):
        markdown = charts[f"chart_{timeframe}"].value
        match = re.fullmatch(r"!\[[^\]]*\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", markdown)
        assert match, markdown[:80]
        png = base64.b64decode(match.group(1))
        assert png_size(png) == (1000, 700)
        assert len(png) < MAX_PNG_BYTES
        path = Path(charts[f"chart_{timeframe}_path"].value)
        assert path == home / "artifacts" / "charts" / f"btcusdt_{timeframe}.png"
        assert path.read_bytes() == png
    backtests = analysed.metadata("btcusdt_backtests")
    assert Path(backtests["equity_chart_path"].value).exists()
    assert isinstance(backtests["oos_buy_and_hold_total_return"].value, float)
    assert backtests["stretch_1h"].value == "2024-01-01 00:00 .. 2024-01-09 00:00 (192 bars)"
    assert backtests["gaps_skipped_1h"].value == "none"


def test_numeric_results_are_float_metadata(analysed: Analysed) -> None:
    home = analysed.home
    hourly = analysed.metadata("btcusdt_indicators_1h")
    table = read_table(home, "btcusdt_indicators_1h").sort_values("open_time")
    assert hourly["close"].value == table["close"].iloc[-1]
    assert hourly["rsi_14"].value == pytest.approx(table["rsi_14"].iloc[-1])
    profile = analysed.metadata("btcusdt_volume_profile")
    bins = read_table(home, "btcusdt_volume_profile")
    assert profile["point_of_control"].value == bins.loc[bins["volume"].idxmax(), "price"]


def test_rebuilding_one_day_replaces_its_bars(analysed: Analysed) -> None:
    home = analysed.home
    before = read_table(home, "btcusdt_1h")
    result = dg.materialize(
        [*LINEAGE, btcusdt_bars],
        selection=[btcusdt_bars],
        partition_key="2024-01-03",
        resources=local_resources({"CRYPTO_ASSETS_HOME": str(home)}),
    )
    assert result.success
    bars = result.asset_materializations_for_node("btcusdt_bars")[0].metadata
    assert (bars["bars_1h"].value, bars["bars_4h"].value, bars["bars_1d"].value) == (24, 6, 1)
    after = read_table(home, "btcusdt_1h")
    pd.testing.assert_frame_equal(
        after.sort_values("open_time").reset_index(drop=True),
        before.sort_values("open_time").reset_index(drop=True),
    )


def test_pure_charts_decode_with_the_expected_size() -> None:
    times = pd.date_range("2024-01-01", periods=30, freq="D")
    bars = pd.DataFrame(
        {
            "open_time": times,
            "open": range(100, 130),
            "high": range(102, 132),
            "low": range(98, 128),
            "close": range(101, 131),
            "volume": 10.0,
            "taker_base_vol": 6.0,
        }
    )
    levels = pd.DataFrame(
        {"price": [110.0], "kind": ["support"], "timeframe": ["1d"], "touches": [3]}
    )
    png = candlestick_chart(bars, bars[["open_time"]], levels, "test", size=(8, 6))
    assert png_size(png) == (800, 600) and len(png) < MAX_PNG_BYTES
    equity = pd.Series([1.0, 1.1, 0.9], index=times[:3])
    png = equity_chart({"buy_and_hold": equity, "sma_cross": equity * 1.01}, "test")
    assert png_size(png) == (1000, 600) and len(png) < MAX_PNG_BYTES
