"""Kline rows exactly as the REST API sends them: read from CSV, or made up deterministically.

Rows keep Binance's types (int times and trade counts, decimal text for prices and volumes) so a
test can compare what a client stored against what Binance would have sent, byte for byte.
"""

from __future__ import annotations

import csv
import gc
import itertools
import math
import os
import pathlib
from collections.abc import Sequence
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import Any

import numpy as np

Row = list[Any]

KLINE_FIELDS = (
    "open_time",
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
    "ignore",
)

SECOND_MS = 1_000
MINUTE_MS = 60 * SECOND_MS
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS

INTERVAL_MS: dict[str, int] = {
    "1s": SECOND_MS,
    "1m": MINUTE_MS,
    "3m": 3 * MINUTE_MS,
    "5m": 5 * MINUTE_MS,
    "15m": 15 * MINUTE_MS,
    "30m": 30 * MINUTE_MS,
    "1h": HOUR_MS,
    "2h": 2 * HOUR_MS,
    "4h": 4 * HOUR_MS,
    "6h": 6 * HOUR_MS,
    "8h": 8 * HOUR_MS,
    "12h": 12 * HOUR_MS,
    "1d": DAY_MS,
    "3d": 3 * DAY_MS,
    "1w": 7 * DAY_MS,
    # Calendar months on Binance; a fixed 30 days is good enough for synthetic data.
    "1M": 30 * DAY_MS,
}

# Binance weeks open on Monday 00:00 UTC; 1970-01-01 was a Thursday, so the grid is shifted 4 days.
_GRID_OFFSET_MS = {"1w": 4 * DAY_MS}


def shared_data_dir() -> pathlib.Path:
    """Where the read-only real Binance klines live (``<repo>/../shared/data/binance``).

    Kept outside the repository on purpose; tests must skip when it is absent.
    """
    repo_root = pathlib.Path(__file__).resolve().parents[2]
    return repo_root.parent / "shared" / "data" / "binance"


# --------------------------------------------------------------------------- CSV files


def load_klines_csv(path: str | os.PathLike[str]) -> list[Row]:
    """Read a klines CSV into the exact rows the REST API sends.

    Decimal text is passed through untouched (no float round trip), so a test can compare what the
    client stored against what Binance would have sent byte for byte. Extra columns (the capstone's
    ``order_book``) are ignored; a header-less file is read in Binance's archive column order, and
    the archive's microsecond timestamps are brought back to the REST API's milliseconds.
    """
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        first = next(reader, None)
        if first is None:
            return []
        if first and first[0].strip().isdigit():
            columns = {name: i for i, name in enumerate(KLINE_FIELDS)}
            pending: list[list[str]] = [first]
        else:
            columns = {name.strip(): i for i, name in enumerate(first)}
            missing = [name for name in KLINE_FIELDS[:-1] if name not in columns]
            if missing:
                raise ValueError(f"{path}: missing kline columns {missing}")
            pending = []
        rows = [
            _csv_record_to_row(record, columns)
            for record in itertools.chain(pending, reader)
            if any(cell.strip() for cell in record)
        ]
    rows.sort(key=lambda row: row[0])
    return rows


def _csv_record_to_row(record: Sequence[str], columns: dict[str, int]) -> Row:
    def text(name: str) -> str:
        return record[columns[name]].strip()

    open_time = int(text("open_time"))
    close_time = int(text("close_time"))
    if open_time >= 10**14:  # microseconds (data.binance.vision spot files from 2025 on)
        open_time //= 1000
        close_time //= 1000
    return [
        open_time,
        text("open"),
        text("high"),
        text("low"),
        text("close"),
        text("volume"),
        close_time,
        text("quote_asset_volume"),
        int(text("num_trades")),
        text("taker_base_vol"),
        text("taker_quote_vol"),
        "0",
    ]


# --------------------------------------------------------------------------- synthetic candles


def _price_tick(price: float) -> float:
    """A tick that keeps about 7 significant digits, like Binance's tick sizes (BTCUSDT: 0.01)."""
    exponent = math.floor(math.log10(price)) - 6
    return 10.0 ** min(-2, max(-8, exponent))


def _format8(values: np.ndarray) -> list[str]:
    return list(map("{:.8f}".format, values.tolist()))


def synthetic_klines(
    interval: str,
    start_ms: int,
    end_ms: int,
    seed: int = 7,
    start_price: float = 30000.0,
) -> list[Row]:
    """Deterministic, plausible candles for any span, so tests are not limited to the shipped CSVs.

    A geometric random walk on Binance's interval grid (open_time in ``[start_ms, end_ms)``), with
    the REST API's types and 8-decimal text. Every row obeys the invariants a validator checks:
    low <= min(open, close) <= max(open, close) <= high, all prices > 0, volumes and trades >= 0,
    taker volumes <= totals, quote volume ~ volume * price, close_time = open_time + interval - 1.
    Vectorised with numpy so a year of 1m candles takes about a second.
    """
    if interval not in INTERVAL_MS:
        raise ValueError(f"unknown interval {interval!r}")
    if start_price <= 0:
        raise ValueError("start_price must be > 0")
    step = INTERVAL_MS[interval]
    offset = _GRID_OFFSET_MS.get(interval, 0)
    first = -((offset - start_ms) // step) * step + offset  # first grid point >= start_ms
    if first >= end_ms:
        return []
    n = (end_ms - 1 - first) // step + 1
    open_times = first + step * np.arange(n, dtype=np.int64)

    rng = np.random.default_rng(seed)
    minutes = step / MINUTE_MS
    sigma = 0.0006 * math.sqrt(minutes)
    close_raw = start_price * np.exp(np.cumsum(rng.normal(0.0, sigma, n)))
    open_raw = np.empty(n)
    open_raw[0] = start_price
    open_raw[1:] = close_raw[:-1]
    up = np.exp(np.abs(rng.normal(0.0, 0.6 * sigma, n)))
    down = np.exp(-np.abs(rng.normal(0.0, 0.6 * sigma, n)))

    tick = _price_tick(start_price)
    opens = np.maximum(np.round(open_raw / tick) * tick, tick)
    closes = np.maximum(np.round(close_raw / tick) * tick, tick)
    body_top = np.maximum(opens, closes)
    body_bottom = np.minimum(opens, closes)
    highs = np.maximum(np.round(np.maximum(open_raw, close_raw) * up / tick) * tick, body_top)
    lows = np.minimum(np.round(np.minimum(open_raw, close_raw) * down / tick) * tick, body_bottom)
    lows = np.maximum(lows, tick)  # still <= body_bottom, which is >= tick

    # Volumes in integer lots of 0.00001 so taker <= total holds exactly.
    quote_per_minute = 250_000.0
    lots = np.floor(
        quote_per_minute * minutes / start_price * rng.lognormal(0.0, 0.7, n) * 1e5
    ).astype(np.int64)
    taker_lots = np.floor(lots * rng.uniform(0.25, 0.75, n)).astype(np.int64)
    taker_lots = np.minimum(taker_lots, lots)
    volume = lots / 1e5
    taker_volume = taker_lots / 1e5
    quote = volume * (highs + lows + closes) / 3.0
    taker_share = np.divide(taker_lots, lots, out=np.zeros(n), where=lots > 0, casting="unsafe")
    taker_quote = np.minimum(quote * taker_share, quote)
    trades = rng.poisson(quote / 250.0)

    # Building ~half a million small lists triggers the cyclic GC over and over; none can form a
    # cycle, so pause it (this alone halves the run time for a year of 1m candles).
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _assemble_rows(
            open_times,
            step,
            (opens, highs, lows, closes, volume),
            (quote, trades, taker_volume, taker_quote),
        )
    finally:
        if gc_was_enabled:
            gc.enable()


def _assemble_rows(
    open_times: np.ndarray,
    step: int,
    prices_and_volume: tuple[np.ndarray, ...],
    rest: tuple[np.ndarray, ...],
) -> list[Row]:
    """Zip the numpy columns into REST rows: ints stay ints, decimals become 8-place text."""
    opens, highs, lows, closes, volume = prices_and_volume
    quote, trades, taker_volume, taker_quote = rest
    return list(
        map(
            list,
            zip(
                open_times.tolist(),
                _format8(opens),
                _format8(highs),
                _format8(lows),
                _format8(closes),
                _format8(volume),
                (open_times + (step - 1)).tolist(),
                _format8(quote),
                trades.tolist(),
                _format8(taker_volume),
                _format8(taker_quote),
                itertools.repeat("0"),
                strict=False,
            ),
        )
    )


# --------------------------------------------------------------------------- the unclosed candle


def in_progress_view(row: Row, now_ms: int) -> Row:
    """What Binance shows for a candle still open at ``now_ms``: volumes so far, close = last price.

    The stored row is the finished candle; serving a partial one makes a client that keeps the
    unclosed candle visibly wrong once the candle closes. Unparseable (deliberately corrupted) rows
    are served unchanged.
    """
    try:
        open_time, close_time = int(row[0]), int(row[6])
        span = close_time - open_time + 1
        elapsed = min(max(now_ms - open_time + 1, 1), span)
        if elapsed >= span:
            return row
        share = Decimal(elapsed) / Decimal(span)
        open_, close = Decimal(row[1]), Decimal(row[4])
        grid = Decimal(1).scaleb(min(open_.as_tuple().exponent, close.as_tuple().exponent))
        eight = Decimal("1e-8")

        def part(text: str) -> str:
            return f"{(Decimal(text) * share).quantize(eight, rounding=ROUND_DOWN):f}"

        view = list(row)
        view[4] = f"{(open_ + (close - open_) * share).quantize(grid):f}"
        view[5] = part(row[5])
        view[7] = part(row[7])
        view[8] = int(int(row[8]) * share)
        view[9] = part(row[9])
        view[10] = part(row[10])
        return view
    except (ArithmeticError, InvalidOperation, ValueError, TypeError, IndexError):
        return row
