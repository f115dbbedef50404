"""Pure pandas: klines as received -> typed, de-duplicated candles with derived columns.

Nothing here knows about Dagster, S3 or Binance's HTTP API, so every rule can be tested on a
small frame. Frames travel a UTC day or a batch of days at a time (``DayFrames``), so a
year-long range never has to sit in memory at once.
"""

from __future__ import annotations

import bisect
import operator
from collections.abc import Iterable, Iterator
from datetime import datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from crypto_assets.klines.frames import DAY_MS, DayBatch, DayFrames, day_start_ms
from crypto_assets.sources.binance_rest import INTERVAL_MS, KLINE_FIELDS, Kline

DECIMAL_FIELDS = (
    "open",
    "high",
    "low",
    "close",
    "volume",
    "quote_asset_volume",
    "taker_base_vol",
    "taker_quote_vol",
)
INTEGER_FIELDS = ("open_time", "close_time", "num_trades")
RAW_COLUMNS = (*KLINE_FIELDS, "symbol", "interval", "fetched_at")
CLEAN_COLUMNS = (
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
)
COLUMN_DESCRIPTIONS = {
    "open_time": "Candle open time, UTC",
    "symbol": "Binance spot symbol, e.g. BTCUSDT",
    "interval": "Kline interval, e.g. 1m",
    "open": "First trade price in the candle",
    "high": "Highest trade price",
    "low": "Lowest trade price",
    "close": "Last trade price",
    "volume": "Base asset volume",
    "close_time": "Candle close time, UTC (open_time + interval - 1 ms)",
    "quote_asset_volume": "Quote asset volume",
    "num_trades": "Number of trades",
    "taker_base_vol": "Taker buy base asset volume",
    "taker_quote_vol": "Taker buy quote asset volume",
    "price_diff": "high - low (the capstone's range)",
    "price_change": "close - open (the capstone's change)",
    "candle_return": "close / open - 1",
    "typical_price": "(high + low + close) / 3",
    "vwap": "quote_asset_volume / volume; empty when no volume",
    "taker_buy_ratio": "taker_base_vol / volume; empty when no volume",
}


class KlineDataError(ValueError):
    """Klines that cannot be typed: names the column, the value and the candle."""


def split_by_day(
    pages: Iterable[list[Kline]], day_keys: list[str]
) -> Iterator[tuple[str, list[Kline]]]:
    """Regroups ordered pages of klines into one list per UTC day, holding one day at a time.

    Every key in ``day_keys`` is yielded, in order, even a day Binance has no candles for.
    A page is cut at day boundaries found by bisection, not walked kline by kline: a year of
    1m candles is half a million klines.
    """
    pending = iter(day_keys)
    current = next(pending, None)
    rows: list[Kline] = []
    for page in pages:
        position = 0
        while current is not None and position < len(page):
            start = day_start_ms(current)
            first = bisect.bisect_left(page, start, lo=position, key=_OPEN_TIME)
            end = bisect.bisect_left(page, start + DAY_MS, lo=first, key=_OPEN_TIME)
            rows.extend(page[first:end])
            position = end
            if end < len(page):  # the page goes on past this day
                yield current, rows
                rows, current = [], next(pending, None)
    while current is not None:
        yield current, rows
        rows, current = [], next(pending, None)


_OPEN_TIME = operator.itemgetter(0)


def raw_frame(
    klines: list[Kline], symbol: str, interval: str, fetched_at: datetime
) -> pd.DataFrame:
    """The klines exactly as Binance sent them, plus where and when they came from.

    Built column by column as Arrow arrays (strings for the decimal text) and handed to pandas
    as they are, not row by row, not through pandas' string constructor and not through a
    table conversion: it runs once per day of every backfill.
    """
    columns = list(zip(*klines, strict=True)) if klines else [()] * len(KLINE_FIELDS)
    try:
        arrays = [
            pa.array(values, type=pa.int64() if field in INTEGER_FIELDS else pa.string())
            for field, values in zip(KLINE_FIELDS, columns, strict=True)
        ]
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return with_source_columns(_coerced_raw_frame(columns), symbol, interval, fetched_at)
    rows = len(klines)
    data: dict[str, object] = {
        field: array.to_numpy(zero_copy_only=False)
        if field in INTEGER_FIELDS
        else pd.arrays.ArrowStringArray(array)
        for field, array in zip(KLINE_FIELDS, arrays, strict=True)
    }
    data["symbol"] = pd.arrays.ArrowStringArray(pa.repeat(symbol, rows))
    data["interval"] = pd.arrays.ArrowStringArray(pa.repeat(interval, rows))
    fetched_ns = np.full(rows, pd.Timestamp(fetched_at).tz_convert("UTC").value, dtype="int64")
    data["fetched_at"] = pd.DatetimeIndex(fetched_ns.view("datetime64[ns]"), tz="UTC")
    return pd.DataFrame(data, columns=list(RAW_COLUMNS), copy=False)


def _coerced_raw_frame(columns: list[tuple]) -> pd.DataFrame:
    """The slower path for values of an unexpected type (a number where Binance sends text,
    text where it sends an int), which Arrow refuses and pandas coerces as it always has."""
    return pd.DataFrame(
        {
            field: np.array(values, dtype="int64")
            if field in INTEGER_FIELDS
            else pd.array(values, dtype="string[pyarrow]")
            for field, values in zip(KLINE_FIELDS, columns, strict=True)
        }
    )


def with_source_columns(
    frame: pd.DataFrame, symbol: str, interval: str, fetched_at: datetime
) -> pd.DataFrame:
    """Adds symbol, interval and fetched_at, the raw zone's columns beyond Binance's 12, to a
    frame pandas built (raw_frame adds them in Arrow)."""
    index = frame.index
    frame["symbol"] = pd.Series(symbol, index=index, dtype="string[pyarrow]")
    frame["interval"] = pd.Series(interval, index=index, dtype="string[pyarrow]")
    frame["fetched_at"] = pd.Series(pd.Timestamp(fetched_at), index=index).astype(
        "datetime64[ns, UTC]"
    )
    return frame


def _to_float(raw: pd.DataFrame, column: str) -> pd.Series | np.ndarray:
    """The decimal text as float64; Arrow's cast when every value parses (20x faster than
    pandas' to_numeric), else the slow path that names the first bad value."""
    text = raw[column]
    try:
        return (
            pc.cast(pa.array(text.array, from_pandas=True), pa.float64())
            .to_numpy(zero_copy_only=False)
            .astype("float64")
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        pass
    values = pd.to_numeric(text, errors="coerce").astype("float64")
    bad = values.isna() & raw[column].notna()
    if bad.any():
        first = bad.idxmax()
        raise KlineDataError(
            f"Column {column!r} holds {raw.at[first, column]!r}, not a number"
            f" (candle open_time {raw.at[first, 'open_time']}; {int(bad.sum())} such values)."
        )
    return values


def clean_frame(raw: pd.DataFrame) -> pd.DataFrame:
    """Typed, sorted, identical rows dropped, ``ignore`` dropped, derived columns added."""
    _require_raw_columns(raw)
    # Identical rows are dropped; two different candles for one open_time stay, for the
    # blocking open_time_unique_on_grid check to name. A day whose open_times are unique and
    # ascending (nearly every day) is taken as it is: hashing its rows cost a fifth of a clean.
    if _unique_and_ascending(raw["open_time"]):
        return _typed(raw)
    return _typed(raw.drop_duplicates().sort_values("open_time", kind="stable"))


def _require_raw_columns(raw: pd.DataFrame) -> None:
    missing = [column for column in RAW_COLUMNS if column not in raw.columns]
    if missing:
        raise KlineDataError(f"Raw klines lack the columns {missing}.")


def _unique_and_ascending(open_times: pd.Series) -> bool:
    return open_times.is_unique and open_times.is_monotonic_increasing


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """The clean columns of rows already de-duplicated and in order, row for row."""
    prices = {column: np.asarray(_to_float(frame, column)) for column in DECIMAL_FIELDS}
    high, low, open_, close = (prices[name] for name in ("high", "low", "open", "close"))
    volume = prices["volume"]
    traded_volume = np.where(volume > 0, volume, np.nan)
    # Derived on numpy arrays and assembled once, by position, without copies: column-by-column
    # assignment and pandas' own copying cost more than the arithmetic. A zero open or volume
    # gives inf or NaN, as pandas would.
    with np.errstate(divide="ignore", invalid="ignore"):
        derived = {
            "price_diff": high - low,
            "price_change": close - open_,
            "candle_return": close / open_ - 1,
            "typical_price": (high + low + close) / 3,
            "vwap": prices["quote_asset_volume"] / traded_volume,
            "taker_buy_ratio": prices["taker_base_vol"] / traded_volume,
        }
    columns = {
        "open_time": _utc_times(frame["open_time"]),
        "symbol": _arrow_text(frame["symbol"]),
        "interval": _arrow_text(frame["interval"]),
        **prices,
        "close_time": _utc_times(frame["close_time"]),
        "num_trades": frame["num_trades"].to_numpy(dtype="int64"),
        **derived,
    }
    return pd.DataFrame({column: columns[column] for column in CLEAN_COLUMNS}, copy=False)


_ARROW_TEXT = pd.StringDtype("pyarrow")


def _arrow_text(text: pd.Series) -> pd.api.extensions.ExtensionArray:
    """Text as Arrow-backed strings: what the raw zone already holds, and what Parquet writes
    without converting a Python object per row."""
    return text.array if text.dtype == _ARROW_TEXT else text.astype(_ARROW_TEXT).array


def _utc_times(epoch_ms: pd.Series) -> pd.DatetimeIndex:
    """Epoch milliseconds as UTC timestamps (ns), without to_datetime's per-call parsing."""
    nanoseconds = epoch_ms.to_numpy(dtype="int64") * 1_000_000
    return pd.DatetimeIndex(nanoseconds.view("datetime64[ns]"), tz="UTC")


def clean_days(raw_days: DayFrames) -> DayFrames:
    """Cleans a batch of days at once, so a long range costs one batch of memory and a few
    calls per month rather than per day."""
    return DayFrames(batches=_clean_batches(raw_days.batches()))


def _clean_batches(batches: Iterable[DayBatch]) -> Iterator[DayBatch]:
    """A batch whose open_times run unique and ascending across its days (nearly always) keeps
    every row in place, so it is typed whole and its days keep their row counts; any other is
    cleaned day by day, as each day alone would be."""
    for batch in batches:
        _require_raw_columns(batch.frame)
        if len(batch.keys) > 1 and _unique_and_ascending(batch.frame["open_time"]):
            yield batch.with_frame(_typed(batch.frame))
        else:
            yield from (DayBatch.one_day(key, clean_frame(raw)) for key, raw in batch.days())


def warehouse_days(clean_days: DayFrames) -> DayFrames:
    return DayFrames(
        batches=(batch.with_frame(warehouse_frame(batch.frame)) for batch in clean_days.batches())
    )


def warehouse_frame(clean: pd.DataFrame) -> pd.DataFrame:
    """The warehouse row shape: timestamps as naive UTC (Snowflake TIMESTAMP_NTZ, DuckDB TIMESTAMP).

    Naive UTC keeps range deletes (``open_time >= '2024-01-01 00:00:00'``) independent of the
    session time zone of whoever runs them.
    """
    columns = {column: clean[column].array for column in clean.columns}
    for column in ("open_time", "close_time"):
        columns[column] = clean[column].dt.tz_convert(None).array  # to UTC, then naive
    for column in ("symbol", "interval"):
        columns[column] = clean[column].to_numpy(dtype=object)
    return pd.DataFrame(columns, index=clean.index, copy=False)


def expected_open_times(
    partition_key: str, interval: str, until_ms: int | None = None
) -> np.ndarray:
    """Open times (epoch ms) of a complete day's candles; only those closed by ``until_ms``."""
    start = day_start_ms(partition_key)
    step = INTERVAL_MS[interval]
    end = start + DAY_MS if until_ms is None else min(start + DAY_MS, until_ms - step + 1)
    return np.arange(start, max(end, start), step, dtype="int64")
