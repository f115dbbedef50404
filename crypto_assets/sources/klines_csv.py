"""The capstone's CSV export: ``save_klines_to_csv("BTCUSDT", "1h")`` writes ``BTCUSDT_1h.csv``."""

import csv
import os
from collections.abc import Callable
from pathlib import Path

from crypto_assets.sources.binance_rest import (
    KLINE_FIELDS,
    BinanceKlinesClient,
    Kline,
    TimeLike,
    time_range_ms,
    validate_interval,
    validate_symbol,
)

CSV_HEADER = (*KLINE_FIELDS, "order_book")


def save_klines_to_csv(
    symbol: str = "BTCUSDT",
    interval: str = "1h",
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    path: str | os.PathLike[str] | None = None,
    client: BinanceKlinesClient | None = None,
    on_page: Callable[[list[Kline]], None] | None = None,
) -> Path:
    """Writes closed klines to ``{symbol}_{interval}.csv`` (the capstone's file), page by page.

    The file appears complete or not at all: rows go to a temporary file renamed at the end.
    """
    validate_symbol(symbol)
    validate_interval(interval)
    start_ms, end_ms = time_range_ms(start, end)
    target = Path(path) if path is not None else Path(f"{symbol}_{interval}.csv")
    client = client or BinanceKlinesClient()
    partial = target.with_name(target.name + ".partial")
    try:
        with partial.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(CSV_HEADER)
            for page in client.iter_kline_pages(symbol, interval, start_ms, end_ms):
                writer.writerows([*kline, ""] for kline in page)
                if on_page is not None:
                    on_page(page)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return target
