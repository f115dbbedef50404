"""Pure transforms: typing, de-duplication, derived columns, regrouping by day."""

from datetime import datetime, timezone

import pandas as pd
import pytest

from crypto_assets.klines.frames import DayBatch, DayFrames, day_keys_between, split_frame_by_day
from crypto_assets.klines.transform import (
    KlineDataError,
    clean_days,
    clean_frame,
    expected_open_times,
    raw_frame,
    split_by_day,
    warehouse_days,
    warehouse_frame,
)
from crypto_assets_tests.conftest import synthetic_days

FETCHED_AT = datetime(2024, 1, 2, tzinfo=timezone.utc)


def kline(open_time: int, open_="100.0", high="110.0", low="90.0", close="105.0") -> list:
    return [
        open_time,
        open_,
        high,
        low,
        close,
        "2.0",
        open_time + 59_999,
        "210.0",
        7,
        "0.5",
        "52.5",
        "0",
    ]


def test_raw_frame_keeps_binance_text_and_adds_provenance():
    frame = raw_frame(
        [kline(1_704_067_200_000, open_="42283.58000000")], "BTCUSDT", "1m", FETCHED_AT
    )
    assert frame.loc[0, "open"] == "42283.58000000"
    assert frame.loc[0, "open_time"] == 1_704_067_200_000
    assert frame.loc[0, "num_trades"] == 7
    assert frame.loc[0, "symbol"] == "BTCUSDT"
    assert frame.loc[0, "interval"] == "1m"
    assert frame.loc[0, "fetched_at"] == pd.Timestamp(FETCHED_AT)


def test_clean_frame_types_sorts_deduplicates_and_derives():
    start = 1_704_067_200_000
    raw = raw_frame(
        [kline(start + 60_000), kline(start, close="95.0"), kline(start + 60_000)],
        "BTCUSDT",
        "1m",
        FETCHED_AT,
    )
    clean = clean_frame(raw)
    assert list(clean.columns) == [
        "open_time",
        "symbol",
        "interval",
        "open",
        "high",
        "low",
        "close",
        "volume",
        "close_time",
        "quote_asset_volume",
        "num_trades",
        "taker_base_vol",
        "taker_quote_vol",
        "price_diff",
        "price_change",
        "candle_return",
        "typical_price",
        "vwap",
        "taker_buy_ratio",
    ]
    assert "ignore" not in clean.columns
    assert len(clean) == 2
    assert clean["open_time"].tolist() == [
        pd.Timestamp("2024-01-01 00:00", tz="UTC"),
        pd.Timestamp("2024-01-01 00:01", tz="UTC"),
    ]
    first = clean.iloc[0]
    assert first["close_time"] == pd.Timestamp("2024-01-01 00:00:59.999", tz="UTC")
    assert first["price_diff"] == pytest.approx(20.0)
    assert first["price_change"] == pytest.approx(-5.0)
    assert first["candle_return"] == pytest.approx(-0.05)
    assert first["typical_price"] == pytest.approx((110 + 90 + 95) / 3)
    assert first["vwap"] == pytest.approx(105.0)
    assert first["taker_buy_ratio"] == pytest.approx(0.25)
    assert clean["num_trades"].dtype == "int64"


def test_clean_frame_leaves_vwap_empty_without_volume():
    row = kline(1_704_067_200_000)
    row[5] = "0"
    clean = clean_frame(raw_frame([row], "BTCUSDT", "1m", FETCHED_AT))
    assert pd.isna(clean.loc[0, "vwap"]) and pd.isna(clean.loc[0, "taker_buy_ratio"])


def test_clean_frame_names_the_bad_value_and_candle():
    row = kline(1_704_067_200_000, high="12x")
    with pytest.raises(KlineDataError, match=r"'high' holds '12x'.*1704067200000"):
        clean_frame(raw_frame([row], "BTCUSDT", "1m", FETCHED_AT))


def test_split_by_day_regroups_pages_and_keeps_empty_days():
    day1, day3 = 1_704_067_200_000, 1_704_067_200_000 + 2 * 86_400_000
    pages = [[kline(day1), kline(day1 + 60_000)], [kline(day3)]]
    days = list(split_by_day(iter(pages), day_keys_between("2024-01-01", "2024-01-03")))
    assert [key for key, _ in days] == ["2024-01-01", "2024-01-02", "2024-01-03"]
    assert [len(rows) for _, rows in days] == [2, 0, 1]


def test_split_frame_by_day_uses_utc_dates():
    clean = clean_frame(
        raw_frame([kline(1_704_153_540_000), kline(1_704_153_600_000)], "BTCUSDT", "1m", FETCHED_AT)
    )
    days = split_frame_by_day(clean, ["2024-01-01", "2024-01-02"])
    assert [(key, len(frame)) for key, frame in days] == [("2024-01-01", 1), ("2024-01-02", 1)]


def test_warehouse_frame_stores_naive_utc():
    clean = clean_frame(raw_frame([kline(1_704_067_200_000)], "BTCUSDT", "1m", FETCHED_AT))
    frame = warehouse_frame(clean)
    assert frame.loc[0, "open_time"] == pd.Timestamp("2024-01-01 00:00")
    assert frame["open_time"].dt.tz is None


def test_expected_open_times_full_day_and_until_now():
    assert len(expected_open_times("2024-01-01", "1m")) == 1440
    assert len(expected_open_times("2024-01-01", "1h")) == 24
    noon = 1_704_067_200_000 + 12 * 3_600_000
    # candles closed by 12:00:30 are those opened up to 11:59
    assert len(expected_open_times("2024-01-01", "1m", until_ms=noon + 30_000)) == 720


def test_raw_frame_coerces_a_number_sent_as_text_or_text_sent_as_a_number():
    odd = kline(1_704_067_200_000)
    odd[1], odd[8] = 42283.5, "7"
    frame = raw_frame([odd, kline(1_704_067_260_000)], "BTCUSDT", "1m", FETCHED_AT)
    assert frame["open"].tolist() == ["42283.5", "100.0"]
    assert frame["num_trades"].tolist() == [7, 7]
    assert str(frame["open"].dtype) == "string" and frame["num_trades"].dtype == "int64"


def test_clean_frame_takes_ordered_unique_days_as_they_are_and_derives_from_zero_volume():
    start = 1_704_067_200_000
    quiet = kline(start + 60_000)
    quiet[5] = "0"
    clean = clean_frame(raw_frame([kline(start), quiet], "BTCUSDT", "1m", FETCHED_AT))
    assert clean["open_time"].tolist() == [
        pd.Timestamp("2024-01-01 00:00", tz="UTC"),
        pd.Timestamp("2024-01-01 00:01", tz="UTC"),
    ]
    assert clean["close_time"].iloc[1] == pd.Timestamp("2024-01-01 00:01:59.999", tz="UTC")
    assert clean["price_diff"].tolist() == [20.0, 20.0]
    assert clean["candle_return"].tolist() == [105.0 / 100.0 - 1] * 2
    assert clean["vwap"].iloc[0] == 105.0 and pd.isna(clean["vwap"].iloc[1])
    assert clean["taker_buy_ratio"].iloc[0] == 0.25 and pd.isna(clean["taker_buy_ratio"].iloc[1])
    assert str(clean["open_time"].dtype) == "datetime64[ns, UTC]"


def raw_day(first_day: str, seed: int) -> pd.DataFrame:
    return raw_frame(synthetic_days(first_day, 1, seed=seed), "BTCUSDT", "1m", FETCHED_AT)


def stacked(days: dict[str, pd.DataFrame]) -> DayBatch:
    frames = list(days.values())
    return DayBatch(
        list(days), pd.concat(frames, ignore_index=True), [len(frame) for frame in frames]
    )


def test_batches_of_days_clean_and_load_row_for_row_as_each_day_alone():
    january = {day: raw_day(day, seed) for seed, day in enumerate(("2024-01-30", "2024-01-31"))}
    february = {day: raw_day(day, seed) for seed, day in enumerate(("2024-02-01", "2024-02-02"))}
    repeated = february["2024-02-02"]
    february["2024-02-02"] = pd.concat([repeated, repeated.iloc[[5]]], ignore_index=True)
    raw_days = {**january, **february}

    cleaned = clean_days(DayFrames(batches=[stacked(january), stacked(february)]))
    batches = list(cleaned.batches())

    # January's open_times run in order, so it is typed whole; February repeats a candle, so
    # each of its days is cleaned alone (the repeat dropped).
    assert [batch.keys for batch in batches] == [
        ["2024-01-30", "2024-01-31"],
        ["2024-02-01"],
        ["2024-02-02"],
    ]
    days = [day for batch in batches for day in batch.days()]
    assert [key for key, _ in days] == list(raw_days)
    assert len(days[-1][1]) == 1440
    for key, frame in days:
        pd.testing.assert_frame_equal(frame, clean_frame(raw_days[key]))
    loaded = warehouse_days(DayFrames(batches=batches))
    for (key, frame), clean in zip(loaded, (frame for _, frame in days), strict=True):
        pd.testing.assert_frame_equal(frame, warehouse_frame(clean), obj=key)


def test_a_batch_whose_row_counts_do_not_cover_its_frame_is_refused():
    frame = raw_day("2024-01-01", 1)
    with pytest.raises(ValueError, match=r"row counts \[1000, 1000\] does not match"):
        DayBatch(["2024-01-01", "2024-01-02"], frame, [1000, 1000])
