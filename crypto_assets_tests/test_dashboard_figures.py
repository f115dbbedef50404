"""The market chart's figure builders as pure functions: the price axis fits the candles (never
the profile), level labels never overlap, and no timeframe finer than the stored candles is
offered."""

from datetime import datetime

import pandas as pd
import pytest

from crypto_assets.analytics.label_layout import label_positions
from crypto_assets.dashboard import figures
from crypto_assets.dashboard.queries import (
    MarketQueries,
    drawable_timeframe,
    offered_timeframes,
)


def candles(lows: list[float], highs: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "open_time": pd.date_range("2024-01-01", periods=len(lows), freq="h"),
            "open": lows,
            "high": highs,
            "low": lows,
            "close": highs,
            "volume": [1.0] * len(lows),
            "taker_base_vol": [0.5] * len(lows),
        }
    )


def profile(prices: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "price": prices,
            "volume": [5.0] * len(prices),
            "is_poc": [index == 0 for index in range(len(prices))],
            "in_value_area": [True] * len(prices),
        }
    )


def levels(prices: list[float], timeframe: str = "4h") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "price": prices,
            "kind": ["support" if price < 105 else "resistance" for price in prices],
            "timeframe": timeframe,
        }
    )


def test_the_price_axis_fits_the_candles_not_the_profile():
    bars = candles([100.0, 102.0, 101.0], [104.0, 110.0, 106.0])
    figure = figures.market_figure(bars, volume_profile=profile([60.0, 90.0, 150.0]))
    # lows 100..highs 110, 5% of the 10 span on each side
    assert list(figure.layout.yaxis.range) == [99.5, 110.5]
    assert figure.layout.yaxis.autorange is False
    assert figure.layout.yaxis2.matches == "y"  # the profile shares that axis


def test_flat_candles_still_get_a_range():
    assert figures.price_axis_range(candles([200.0], [200.0])) == (199.0, 201.0)


def test_labels_apart_enough_stay_at_their_prices_and_on_the_axis():
    # axis 99..110: gap 0.495 (4.5% of 11); 109.9 would stick out of the top by half a label
    placed = label_positions([100.0, 101.0, 102.0, 109.9], 99.0, 110.0, figures.LABEL_GAP)
    assert placed == pytest.approx([100.0, 101.0, 102.0, 109.7525])


def test_crowded_labels_are_pushed_apart_by_the_gap():
    # axis 0..100: gap 4.5, half a gap 2.25 kept from each edge
    placed = label_positions([1.0, 50.0, 51.0, 52.0, 99.0, 99.5], 0.0, 100.0, figures.LABEL_GAP)
    assert placed == pytest.approx([2.25, 50.0, 54.5, 59.0, 93.25, 97.75])


def test_labels_above_the_axis_stack_down_from_its_top():
    placed = label_positions([50.0] * 4, 0.0, 10.0, figures.LABEL_GAP)
    assert placed == pytest.approx([8.425, 8.875, 9.325, 9.775])


def test_more_labels_than_fit_share_the_axis_evenly():
    # 30 labels of 4.5% would need 135% of the axis: each gets a thirtieth
    placed = label_positions([5.0] * 30, 0.0, 10.0, figures.LABEL_GAP)
    assert placed == pytest.approx([(index + 0.5) / 3 for index in range(30)])


def test_the_chart_draws_a_label_per_visible_level_apart_from_its_neighbours():
    bars = candles([100.0, 102.0], [104.0, 110.0])
    figure = figures.market_figure(bars, levels=levels([100.2, 100.4, 108.0, 140.0]))
    labels = [note for note in figure.layout.annotations if note.name == "level"]
    # 140 is off the axis (99.5..110.5): no line, no label
    assert [note.text for note in labels] == [
        "support 100 (4h)",
        "support 100 (4h)",
        "resistance 108 (4h)",
    ]
    heights = [note.y for note in labels]
    assert heights == pytest.approx([100.2, 100.695, 108.0])
    assert [shape.y0 for shape in figure.layout.shapes if shape.line.dash == "dash"] == [
        100.2,
        100.4,
        108.0,
    ]


def test_daily_candles_get_the_daily_levels_and_finer_ones_the_4h_levels():
    both = pd.concat([levels([100.0], "1d"), levels([101.0], "4h")], ignore_index=True)
    assert figures.chart_levels(both, "1d")["price"].tolist() == [100.0]
    assert figures.chart_levels(both, "1h")["price"].tolist() == [101.0]
    assert figures.chart_levels(levels([100.0], "1d"), "15m")["price"].tolist() == [100.0]


def test_no_timeframe_finer_than_the_stored_interval_is_offered():
    assert offered_timeframes(1) == ["1m", "15m", "1h", "4h", "1d"]
    assert offered_timeframes(60) == ["1h", "4h", "1d"]
    assert offered_timeframes(5) == ["15m", "1h", "4h", "1d"]
    assert offered_timeframes(240) == ["4h", "1d"]


def test_a_finer_timeframe_than_the_stored_one_is_refused_by_name():
    hourly = MarketQueries(warehouse=None, symbol_table="btcusdt", base_minutes=60)
    with pytest.raises(ValueError, match="15m candles cannot be drawn from 60-minute candles"):
        hourly.plan("15m", datetime(2024, 1, 1), datetime(2024, 1, 2), tables={"base"})
    assert hourly.plan("1h", datetime(2024, 1, 1), datetime(2024, 1, 2), {"base"}).timeframe == (
        "1h"
    )


def test_a_chart_asking_for_a_finer_timeframe_gets_the_next_one_the_candles_make():
    assert drawable_timeframe("1h", 1) == "1h"
    assert drawable_timeframe("15m", 60) == "1h"
    assert drawable_timeframe("1h", 240) == "4h"
    assert drawable_timeframe("4h", 1440) == "1d"
