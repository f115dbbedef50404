"""Contiguous stretches: a hole of more than a day ends one (Binance's maintenance hours do not),
and the indicators warm up again after it instead of bridging it."""

import numpy as np
import pandas as pd
import talib

from crypto_assets.analytics.indicators import indicators
from crypto_assets.analytics.series import gaps, newest_stretch, stretch_ids

HOUR = pd.Timedelta(hours=1)


def hourly(*spans: tuple[str, str]) -> pd.DataFrame:
    """1h bars opening in each [first, last] span, closes 100, 101, ..."""
    times = pd.DatetimeIndex(
        np.concatenate([pd.date_range(first, last, freq="h") for first, last in spans])
    )
    close = 100.0 + np.arange(len(times))
    return pd.DataFrame(
        {
            "open_time": times,
            "open": close - 0.5,
            "high": close + 1,
            "low": close - 1,
            "close": close,
            "volume": 10.0,
            "taker_base_vol": 5.0,
        }
    )


def test_maintenance_hours_stay_inside_one_stretch() -> None:
    # 2023-03-24: Binance stopped trading for about two hours; those 1h bars are missing.
    bars = hourly(
        ("2023-03-23 00:00", "2023-03-24 12:00"), ("2023-03-24 15:00", "2023-03-25 23:00")
    )
    assert set(stretch_ids(bars["open_time"], HOUR)) == {0}
    assert gaps(bars["open_time"], HOUR) == []
    assert len(newest_stretch(bars, HOUR)) == len(bars) == 37 + 33


def test_a_hole_of_more_than_a_day_ends_the_stretch() -> None:
    bars = hourly(
        ("2024-01-01 00:00", "2024-01-01 23:00"),
        ("2024-01-03 00:00", "2024-01-03 05:00"),  # 24 h after the last bar's end: same stretch
        ("2024-01-15 00:00", "2024-01-16 23:00"),
    )
    assert stretch_ids(bars["open_time"], HOUR).tolist() == [0] * 30 + [1] * 48
    (gap,) = gaps(bars["open_time"], HOUR)
    assert str(gap) == "2024-01-03 06:00 .. 2024-01-15 00:00 (11 days 18:00:00)"
    newest = newest_stretch(bars, HOUR)
    assert newest["open_time"].iloc[0] == pd.Timestamp("2024-01-15 00:00")
    assert len(newest) == 48


def test_a_missing_day_of_daily_bars_is_no_hole_but_two_are() -> None:
    times = pd.Series(pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-04", "2024-01-07"]))
    assert stretch_ids(times, pd.Timedelta(days=1)).tolist() == [0, 0, 0, 1]


def test_indicators_warm_up_again_after_a_hole() -> None:
    bars = hourly(
        ("2024-01-01 00:00", "2024-01-02 05:00"), ("2024-01-10 00:00", "2024-01-11 23:00")
    )
    table = indicators(bars, 24 * 365, HOUR)
    first, second = table.iloc[:30], table.iloc[30:]
    assert len(first) == 30 and len(second) == 48
    expected = talib.SMA(bars["close"].to_numpy()[30:], 20)
    np.testing.assert_array_equal(second["sma_20"].to_numpy(), expected)
    assert second["sma_20"].isna().tolist() == [True] * 19 + [False] * 29
    assert second["sma_20"].iloc[19] == 139.5  # closes 130 .. 149: no bar of the first stretch
    assert second["rsi_14"].isna().sum() == 14 and second["volatility_30"].isna().sum() == 30
