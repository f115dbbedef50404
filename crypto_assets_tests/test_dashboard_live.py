"""The live feed's pure parts: which candles are drawn beyond the warehouse, how they fold into
a coarser timeframe, and which REST refusals mean "back off"."""

from __future__ import annotations

import pandas as pd

from crypto_assets.dashboard.live import (
    FORMING,
    NOT_IN_WAREHOUSE,
    is_rate_limit,
    live_candles,
    merge_live,
)
from crypto_assets.sources.binance_rest import BinanceError
from crypto_assets.sources.stream_messages import Candle
from crypto_assets_tests.conftest import utc_ms

MINUTE = 60_000
DAY = utc_ms("2026-12-05")


def candle(minute: int, close: str, *, closed: bool = True, volume: str = "2") -> Candle:
    open_time = DAY + minute * MINUTE
    return Candle(
        "BTCUSDT", "1m", open_time, "100", "110", "90", close, volume, open_time + MINUTE - 1,
        "200", 3, "1", "100", closed,
    )  # fmt: skip


def test_live_candles_are_those_after_the_warehouse_then_the_forming_one() -> None:
    closed = [candle(10, "101"), candle(11, "102"), candle(12, "103")]
    frame = live_candles(closed, candle(13, "104", closed=False), pd.Timestamp("2026-12-05 00:10"))
    assert list(frame["open_time"].astype(str)) == [
        "2026-12-05 00:11:00",
        "2026-12-05 00:12:00",
        "2026-12-05 00:13:00",
    ]
    assert list(frame["status"]) == [NOT_IN_WAREHOUSE, NOT_IN_WAREHOUSE, FORMING]
    assert list(frame["close"]) == [102.0, 103.0, 104.0]
    assert live_candles(closed, None, pd.Timestamp("2026-12-05 00:12")).empty
    assert len(live_candles(closed, None, None)) == 3


def test_merge_live_extends_the_last_bucket_and_appends_new_ones() -> None:
    warehouse = pd.DataFrame(
        {
            "open_time": pd.to_datetime(["2026-12-05 00:00", "2026-12-05 00:15"]),
            "open": [100.0, 105.0],
            "high": [120.0, 108.0],
            "low": [95.0, 99.0],
            "close": [105.0, 101.0],
            "volume": [30.0, 10.0],
            "taker_base_vol": [15.0, 5.0],
            "num_trades": [45, 15],
            "candle_count": [15, 5],
        }
    )
    live = live_candles(
        [candle(20, "102"), candle(29, "104")],
        candle(30, "107", closed=False),
        pd.Timestamp("2026-12-05 00:19"),
    )
    merged = merge_live(warehouse, live, 15)
    assert list(merged["open_time"].astype(str)) == [
        "2026-12-05 00:00:00",
        "2026-12-05 00:15:00",
        "2026-12-05 00:30:00",
    ]
    assert list(merged["in_warehouse"]) == [True, False, False]
    extended = merged.iloc[1]
    assert (extended["open"], extended["high"], extended["low"], extended["close"]) == (
        105.0,
        110.0,
        90.0,
        104.0,
    )
    assert (extended["volume"], extended["candle_count"]) == (14.0, 7)
    assert merged.iloc[2]["close"] == 107.0
    assert merge_live(warehouse, live.iloc[0:0], 15)["in_warehouse"].tolist() == [True, True]


def test_only_429_and_418_mean_back_off() -> None:
    assert is_rate_limit(
        BinanceError("GET /api/v3/klines failed; last problem: HTTP 429 (code -1003)")
    )
    assert is_rate_limit(BinanceError("GET /api/v3/klines: Binance answered 418 and asks to wait"))
    assert not is_rate_limit(BinanceError("GET /api/v3/klines failed; last problem: HTTP 500"))
