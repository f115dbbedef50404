"""Daily indicators: the maths on known series, and the asset over the local warehouse."""

from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest

from crypto_assets.analytics.assets import daily_indicators as daily_indicators_asset
from crypto_assets.analytics.indicators import daily_indicators, rsi, summary_markdown
from crypto_assets.resources import local_resources
from crypto_assets_tests.lineage import LINEAGE, materialize_days


def bars(closes: list[float]) -> pd.DataFrame:
    days = pd.date_range("2024-01-01", periods=len(closes), freq="D")
    return pd.DataFrame(
        {
            "day": days,
            "symbol": "BTCUSDT",
            "open": closes,
            "high": closes,
            "low": closes,
            "close": closes,
            "volume": 1.0,
            "quote_asset_volume": closes,
            "num_trades": 10,
            "candle_count": 1440,
        }
    )


def test_moving_averages_and_returns_on_a_straight_line():
    frame = daily_indicators(bars([100.0 + day for day in range(40)]))
    assert frame["daily_return"].iloc[1] == pytest.approx(0.01)
    assert frame["sma_7"].iloc[6] == pytest.approx(103.0)
    assert pd.isna(frame["sma_30"].iloc[28])
    assert frame["sma_30"].iloc[39] == pytest.approx(124.5)
    assert frame["macd"].iloc[-1] > 0  # a rising line: the short average is above the long one


def test_rsi_extremes_and_a_textbook_value():
    rising = pd.Series([float(day) for day in range(30)])
    assert rsi(rising).iloc[-1] == pytest.approx(100.0)
    assert rsi(-rising).iloc[-1] == pytest.approx(0.0)
    # 99, 101, 99, ...: the first 14 changes average a gain of 1 and a loss of 1, so RSI 50; the
    # next change (+2) makes Wilder's averages 15/14 and 13/14, so RSI = 100 - 100 / (1 + 15/13)
    alternating = pd.Series([100.0 + (1 if day % 2 else -1) for day in range(60)])
    values = rsi(alternating)
    assert values.iloc[14] == pytest.approx(50.0)
    assert values.iloc[15] == pytest.approx(100 - 100 / (1 + 15 / 13))
    assert pd.isna(values.iloc[13])


def test_volatility_is_annualised_daily_log_return_deviation():
    rng = np.random.default_rng(3)
    closes = list(100 * np.exp(np.cumsum(rng.normal(0, 0.02, 120))))
    frame = daily_indicators(bars(closes))
    expected = np.log(pd.Series(closes)).diff().tail(30).std() * np.sqrt(365)
    assert frame["volatility_30d"].iloc[-1] == pytest.approx(expected)


def test_summary_lists_the_last_days():
    text = summary_markdown(daily_indicators(bars([100.0, 110.0, 99.0])))
    assert "| 2024-01-02 | 110.00 | +10.00% |" in text
    assert text.count("\n") == 2 + 3


def test_the_asset_resamples_the_warehouse_into_daily_bars(
    tmp_path: Path, synthetic_standin, synthetic_rows
):
    resources = local_resources(
        {"CRYPTO_ASSETS_HOME": str(tmp_path), "BINANCE_BASE_URL": synthetic_standin.url}
    )
    assert materialize_days(resources, "2024-01-01", "2024-01-03").success
    result = dg.materialize(
        [daily_indicators_asset, *LINEAGE], selection=[daily_indicators_asset], resources=resources
    )
    assert result.success
    with duckdb.connect(str(tmp_path / "cryptodb.duckdb"), read_only=True) as connection:
        table = connection.execute(
            "select * from cryptodb.cryptoschema.btcusdt_daily_indicators order by day"
        ).fetchdf()
    assert table["day"].dt.strftime("%Y-%m-%d").tolist() == [
        "2024-01-01",
        "2024-01-02",
        "2024-01-03",
    ]
    second_day = synthetic_rows[1440:2880]
    assert table["open"].iloc[1] == float(second_day[0][1])
    assert table["close"].iloc[1] == float(second_day[-1][4])
    assert table["high"].iloc[1] == max(float(row[2]) for row in second_day)
    assert table["low"].iloc[1] == min(float(row[3]) for row in second_day)
    assert table["num_trades"].iloc[1] == sum(row[8] for row in second_day)
    assert table["candle_count"].tolist() == [1440, 1440, 1440]
    assert table["daily_return"].iloc[1] == pytest.approx(
        table["close"].iloc[1] / table["close"].iloc[0] - 1
    )
    metadata = result.asset_materializations_for_node("daily_indicators")[0].metadata
    assert metadata["close"].value == table["close"].iloc[-1]
