"""Indicators: TA-Lib's own values and warm-up rows, textbook values computed here, pressure
columns, and the market structure (levels, volume profile) on hand-built series."""

import itertools

import numpy as np
import pandas as pd
import pytest
import talib

from crypto_assets.analytics.indicators import INDICATOR_COLUMNS, indicators
from crypto_assets.analytics.structure import levels, strongest_per_side, volume_profile


def random_bars(count: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, count)))
    open_ = np.concatenate([[100.0], close[:-1]])
    volume = rng.uniform(10, 20, count)
    return pd.DataFrame(
        {
            "open_time": pd.date_range("2020-01-01", periods=count, freq="D"),
            "open": open_,
            "high": np.maximum(open_, close) * 1.01,
            "low": np.minimum(open_, close) * 0.99,
            "close": close,
            "volume": volume,
            "taker_base_vol": volume * rng.uniform(0, 1, count),
        }
    )


def test_indicators_equal_talib_and_warm_up_where_talib_puts_it() -> None:
    bars = random_bars(300)
    table = indicators(bars.sample(frac=1, random_state=3))  # any row order in, time order out
    assert list(table.columns) == list(INDICATOR_COLUMNS)
    close, high, low = bars["close"].to_numpy(), bars["high"].to_numpy(), bars["low"].to_numpy()
    macd = talib.MACD(close, 12, 26, 9)
    bands = talib.BBANDS(close, 20, 2, 2, 0)
    expected = {
        "sma_20": talib.SMA(close, 20),
        "sma_50": talib.SMA(close, 50),
        "sma_200": talib.SMA(close, 200),
        "ema_12": talib.EMA(close, 12),
        "ema_26": talib.EMA(close, 26),
        "rsi_14": talib.RSI(close, 14),
        "macd": macd[0],
        "macd_signal": macd[1],
        "macd_hist": macd[2],
        "bb_upper": bands[0],
        "bb_middle": bands[1],
        "bb_lower": bands[2],
        "atr_14": talib.ATR(high, low, close, 14),
        "obv": talib.OBV(close, bars["volume"].to_numpy()),
    }
    for name, values in expected.items():
        np.testing.assert_array_equal(table[name].to_numpy(), values, err_msg=name)
    first_value = {name: int(table[name].first_valid_index()) for name in expected}
    assert first_value == {
        "sma_20": 19,
        "sma_50": 49,
        "sma_200": 199,
        "ema_12": 11,
        "ema_26": 25,
        "rsi_14": 14,
        "macd": 33,
        "macd_signal": 33,
        "macd_hist": 33,
        "bb_upper": 19,
        "bb_middle": 19,
        "bb_lower": 19,
        "atr_14": 14,
        "obv": 0,
    }


def test_textbook_values_computed_independently() -> None:
    bars = random_bars(120, seed=2)
    table = indicators(bars)
    close = bars["close"]
    np.testing.assert_allclose(table["sma_50"], close.rolling(50).mean(), rtol=1e-10)
    middle = close.rolling(20).mean()
    np.testing.assert_allclose(table["bb_upper"], middle + 2 * close.rolling(20).std(ddof=0))
    # 99, 101, 99, ...: the first 14 changes average a gain and a loss of 1 (RSI 50); the next
    # (+2) makes Wilder's averages 15/14 and 13/14, so RSI = 100 - 100 / (1 + 15/13).
    alternating = random_bars(60).assign(close=[100.0 + (1 if i % 2 else -1) for i in range(60)])
    rsi = indicators(alternating)["rsi_14"]
    assert rsi.iloc[14] == pytest.approx(50.0)
    assert rsi.iloc[15] == pytest.approx(100 - 100 / (1 + 15 / 13))
    log_returns = np.log(close).diff()
    assert table["volatility_30"].iloc[-1] == pytest.approx(
        log_returns.tail(30).std() * np.sqrt(365)
    )


def test_pressure_columns() -> None:
    bars = random_bars(3).assign(volume=[10.0, 4.0, 0.0], taker_base_vol=[7.0, 1.0, 0.0])
    table = indicators(bars)
    assert table["taker_buy_ratio"].iloc[:2].tolist() == [0.7, 0.25]
    assert pd.isna(table["taker_buy_ratio"].iloc[2])  # no volume, no ratio
    assert table["net_taker_volume"].tolist() == [4.0, -2.0, 0.0]


def zigzag(points: list[float], steps: int = 4) -> pd.DataFrame:
    """Bars walking in straight lines between the given turning points."""
    path = np.concatenate(
        [np.linspace(a, b, steps, endpoint=False) for a, b in itertools.pairwise(points)]
        + [[points[-1]]]
    )
    return pd.DataFrame(
        {
            "open_time": pd.date_range("2024-01-01", periods=len(path), freq="D"),
            "open": path,
            "high": path,
            "low": path,
            "close": path,
        }
    )


def test_three_bounces_off_100_are_a_support_with_three_touches() -> None:
    bars = zigzag([120, 100, 125, 100.5, 130, 99.6, 128, 115])
    found = levels(bars, "1d", window=3, tolerance=0.01)
    support = found[found["kind"] == "support"]
    assert len(support) == 1
    row = support.iloc[0]
    assert row["price"] == pytest.approx((100 + 100.5 + 99.6) / 3)
    assert row["touches"] == 3
    assert row["first_touch"] == bars["open_time"].iloc[4]
    assert row["last_touch"] == bars["open_time"].iloc[20]
    assert row["last_close"] == 115
    assert row["distance_pct"] == pytest.approx(row["price"] / 115 - 1)
    # 125, 130 and 128 are more than 1% apart pairwise from the lowest: no resistance of 2+.
    assert (found["kind"] == "resistance").sum() == 0


def test_volume_profile_poc_value_area_and_taker_split() -> None:
    prices = [100.0, 101.0, 102.0, 103.0, 104.0]
    volumes = [1.0, 2.0, 10.0, 3.0, 4.0]
    bars = pd.DataFrame(
        {
            "open_time": pd.date_range("2024-01-01", periods=5, freq="h"),
            "high": prices,
            "low": prices,
            "close": prices,
            "volume": volumes,
            "taker_base_vol": [v / 4 for v in volumes],
        }
    )
    profile = volume_profile(bars, pd.Timedelta(hours=1), bins=5)
    assert profile["volume"].tolist() == volumes
    assert profile["is_poc"].tolist() == [False, False, True, False, False]
    # bins are 0.8 wide from 100: the POC is 101.6..102.4, middle 102
    assert profile.loc[profile["is_poc"], "price"].iloc[0] == pytest.approx(102.0)
    # 70% of 20 is 14: the POC (10), then its larger neighbour 103 (3) -> 13, then 104 (4)
    # beats 101 (2) -> 17.
    assert profile["in_value_area"].tolist() == [False, False, True, True, True]
    assert profile["taker_buy_volume"].sum() == pytest.approx(5.0)
    assert profile["taker_sell_volume"].tolist() == [v * 0.75 for v in volumes]
    assert profile["bin_low"].iloc[0] == 100 and profile["bin_high"].iloc[-1] == 104


def bars_of(highs: list[float], lows: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "open_time": pd.date_range("2024-01-01", periods=len(highs), freq="D"),
            "open": lows,
            "high": highs,
            "low": lows,
            "close": lows,
        }
    )


def test_a_flat_top_is_one_touch() -> None:
    highs = [10, 11, 12, 15, 15, 12, 11, 10, 11, 12, 15.05, 12, 11, 10]
    bars = bars_of(highs, [high - 1 for high in highs])
    found = levels(bars, "1d", window=2, tolerance=0.01)
    assert found[["kind", "touches"]].values.tolist() == [["resistance", 2]]
    row = found.iloc[0]
    assert row["price"] == pytest.approx((15 + 15.05) / 2)
    assert row["first_touch"] == bars["open_time"].iloc[3]
    assert row["last_touch"] == bars["open_time"].iloc[10]


RECENCY_POINTS = [100, 120, 101, 130, 102, 120.5, 103, 130.5, 110]
"""Turning points every 4 bars (33 bars): highs at bars 4, 12, 20, 28 and lows at 8, 16, 24."""


def test_recent_swings_weigh_more_and_the_strongest_three_a_side_are_kept() -> None:
    bars = zigzag(RECENCY_POINTS)
    found = levels(bars, "1d", window=3, half_life=8)
    assert found[["price", "kind", "touches"]].values.tolist() == [
        [101.5, "support", 2],
        [120.25, "resistance", 2],
        [130.25, "resistance", 2],
    ]
    # weight 0.5 ** (age / 8), age in bars before the last (bar 32)
    assert found["strength"].tolist() == pytest.approx(
        [
            0.5 ** (24 / 8) + 0.5 ** (16 / 8),
            0.5 ** (28 / 8) + 0.5 ** (12 / 8),
            0.5 ** (20 / 8) + 0.5 ** (4 / 8),
        ]
    )
    strongest = levels(bars, "1d", window=3, half_life=8, max_per_side=1)
    assert strongest["price"].tolist() == [101.5, 130.25]


def test_only_swings_inside_the_lookback_count() -> None:
    # The last 20 bars (13..32) hold one swing high at each of 120.5 and 130.5 (one touch:
    # no level) and the lows 102 and 103, one level.
    found = levels(zigzag(RECENCY_POINTS), "1d", window=3, lookback=20)
    assert found[["price", "kind", "touches"]].values.tolist() == [[102.5, "support", 2]]


def test_at_most_three_levels_a_side() -> None:
    table = pd.DataFrame(
        {
            "price": [90.0, 95.0, 97.0, 98.0, 99.0, 101.0, 102.0],
            "kind": ["support"] * 5 + ["resistance"] * 2,
            "strength": [5.0, 1.0, 3.0, 1.0, 4.0, 0.5, 2.0],
            "distance_pct": [-0.1, -0.05, -0.03, -0.02, -0.01, 0.01, 0.02],
        }
    )
    kept = strongest_per_side(table, 3)
    assert kept["price"].tolist() == [90.0, 97.0, 99.0, 101.0, 102.0]
    # equal strength: the nearer one
    assert strongest_per_side(table, 4)["price"].tolist() == [90.0, 97.0, 98.0, 99.0, 101.0, 102.0]


def test_volume_profile_spreads_each_bar_over_its_range() -> None:
    bars = pd.DataFrame(
        {
            "open_time": pd.to_datetime(["2024-01-01 00:00", "2024-01-01 01:00"]),
            "high": [104.0, 101.5],
            "low": [100.0, 101.5],
            "close": [103.0, 101.5],
            "volume": [8.0, 3.0],
            "taker_base_vol": [4.0, 3.0],
        }
    )
    profile = volume_profile(bars, pd.Timedelta(hours=1), bins=4)
    assert profile["bin_low"].tolist() == [100.0, 101.0, 102.0, 103.0]
    # 8 spread as 2 a bin over 100..104; 3 with no range, all in 101..102
    assert profile["volume"].tolist() == [2.0, 5.0, 2.0, 2.0]
    assert profile["taker_buy_volume"].tolist() == [1.0, 4.0, 1.0, 1.0]
    assert profile["is_poc"].tolist() == [False, True, False, False]
    # 70% of 11 is 7.7: POC 5, the tie goes below (2) -> 7, then above (2) -> 9
    assert profile["in_value_area"].tolist() == [True, True, True, False]
    assert profile["window_start"].iloc[0] == pd.Timestamp("2024-01-01 00:00")
    assert profile["window_end"].iloc[0] == pd.Timestamp("2024-01-01 02:00")
