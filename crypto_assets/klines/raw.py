"""Where each day's raw klines come from: Binance's archive for settled days, REST for the rest.

A day before yesterday (UTC) is read from the archive's verified daily file when an archive is
configured; a day the archive lacks (404) falls back to REST. Today and yesterday always come
from REST: the archive publishes a day hours after it closes, sometimes days. Both paths give
the same raw frame (REST's 12 fields, decimals as the exact text Binance wrote), and each frame
carries its provenance in ``attrs`` (source, URL, SHA-256), which Parquet keeps with the day.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv

from crypto_assets.klines.frames import DAY_MS, day_start_ms
from crypto_assets.klines.transform import DECIMAL_FIELDS, KlineDataError, raw_frame, split_by_day
from crypto_assets.sources.binance_archive import (
    MICROSECONDS_FROM,
    ArchiveDay,
    ArchiveDayMissing,
    BinanceArchiveClient,
)
from crypto_assets.sources.binance_rest import KLINE_FIELDS, BinanceKlinesClient

log = logging.getLogger(__name__)

ARCHIVE, REST = "archive", "rest"
TIME_FIELDS = ("open_time", "close_time")
_CSV_TYPES = {
    **{field: pa.string() for field in KLINE_FIELDS},
    **{field: pa.int64() for field in (*TIME_FIELDS, "num_trades")},
}


def source_for_day(partition_key: str, today: date, archive_enabled: bool) -> str:
    """``archive`` for a day before yesterday (UTC) when an archive is configured, else ``rest``."""
    if archive_enabled and date.fromisoformat(partition_key) < today - timedelta(days=1):
        return ARCHIVE
    return REST


def archive_raw_frame(
    csv: bytes, symbol: str, interval: str, fetched_at: datetime, *, file_name: str = "CSV"
) -> pd.DataFrame:
    """An archive day's CSV as the raw frame REST would give: same columns, dtypes and text.

    Spot CSVs have no header (futures ones do: it is skipped); times in microseconds (spot from
    2025-01-01) become milliseconds.
    """
    if not csv.strip():
        return raw_frame([], symbol, interval, fetched_at)
    has_header = not csv[:1].isdigit()
    try:
        table = pa_csv.read_csv(
            io.BytesIO(csv),
            read_options=pa_csv.ReadOptions(
                column_names=list(KLINE_FIELDS), skip_rows=1 if has_header else 0
            ),
            convert_options=pa_csv.ConvertOptions(column_types=_CSV_TYPES),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise KlineDataError(f"{file_name} is not a klines CSV: {exc}") from exc
    frame = table.to_pandas(types_mapper={pa.string(): pd.ArrowDtype(pa.string())}.get)
    for field in TIME_FIELDS:
        times = frame[field].to_numpy()
        frame[field] = np.where(times >= MICROSECONDS_FROM, times // 1000, times)
    rows = len(frame)
    frame = frame.astype({field: "string[pyarrow]" for field in (*DECIMAL_FIELDS, "ignore")})
    frame["symbol"] = pd.Series([symbol] * rows, dtype="string[pyarrow]")
    frame["interval"] = pd.Series([interval] * rows, dtype="string[pyarrow]")
    frame["fetched_at"] = pd.Series([pd.Timestamp(fetched_at)] * rows, dtype="datetime64[ns, UTC]")
    return frame


def with_provenance(frame: pd.DataFrame, source: str, url: str, sha256: str) -> pd.DataFrame:
    frame.attrs.update({"source": source, "source_url": url, "sha256": sha256})
    return frame


def iter_raw_days(
    partition_keys: list[str],
    symbol: str,
    interval: str,
    rest: BinanceKlinesClient,
    archive: BinanceArchiveClient | None,
    today: date,
    now: Callable[[], datetime],
) -> Iterator[tuple[str, pd.DataFrame]]:
    """One raw frame per partition day, in order: archive where it applies, REST otherwise.

    Consecutive REST days are fetched as one paged stream, as before the archive existed.
    """
    position = 0
    while position < len(partition_keys):
        day = partition_keys[position]
        if archive is not None and source_for_day(day, today, archive_enabled=True) == ARCHIVE:
            position += 1
            try:
                yield day, _archive_day(archive, symbol, interval, day, now())
                continue
            except ArchiveDayMissing as missing:
                log.warning("%s; reading %s from REST instead", missing, day)
            yield from _rest_days(rest, symbol, interval, [day], now)
            continue
        run = [day]
        while position + len(run) < len(partition_keys) and (
            archive is None
            or source_for_day(partition_keys[position + len(run)], today, True) == REST
        ):
            run.append(partition_keys[position + len(run)])
        position += len(run)
        yield from _rest_days(rest, symbol, interval, run, now)


def _archive_day(
    archive: BinanceArchiveClient, symbol: str, interval: str, day: str, fetched_at: datetime
) -> pd.DataFrame:
    fetched: ArchiveDay = archive.fetch_day(symbol, interval, day)
    frame = archive_raw_frame(
        fetched.csv, symbol, interval, fetched_at, file_name=fetched.url.rsplit("/", 1)[-1]
    )
    start = day_start_ms(day)
    outside = ~frame["open_time"].between(start, start + DAY_MS - 1)
    if outside.any():
        raise KlineDataError(
            f"{fetched.url} holds candles outside {day}, e.g. open_time"
            f" {int(frame.loc[outside, 'open_time'].iloc[0])}."
        )
    return with_provenance(frame, ARCHIVE, fetched.url, fetched.sha256)


def _rest_days(
    rest: BinanceKlinesClient,
    symbol: str,
    interval: str,
    days: list[str],
    now: Callable[[], datetime],
) -> Iterator[tuple[str, pd.DataFrame]]:
    start_ms, end_ms = day_start_ms(days[0]), day_start_ms(days[-1]) + DAY_MS
    pages = rest.iter_kline_pages(symbol, interval, start_ms, end_ms)
    url = f"{rest.base_url}/api/v3/klines"
    for day, rows in split_by_day(pages, days):
        yield day, with_provenance(raw_frame(rows, symbol, interval, now()), REST, url, "")
