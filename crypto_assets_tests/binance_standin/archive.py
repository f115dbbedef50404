"""The archive endpoints (data.binance.vision's daily kline zips and their CHECKSUM files).

Zips are built on request from the same rows the REST endpoint serves, written the way Binance
writes them: one headerless CSV per day named like the zip, decimals as the REST text, open and
close times in microseconds from 2025-01-01 on. ``<zip>.CHECKSUM`` holds ``<sha256>  <name>``
without a trailing newline. A day is published once it is over by more than a day (the day
before yesterday at the stand-in's clock); later days, and days without candles, answer 404.

Per-day variants let tests serve what the real archive has served: a header row (as futures
files have), a CHECKSUM that does not match, a truncated zip (with a CHECKSUM of the truncated
bytes), a missing file, or a re-published file whose content changed; and what a hostile mirror
could serve, with matching CHECKSUMs: a zip bomb, or a file far larger than any day's.
"""

from __future__ import annotations

import bisect
import hashlib
import io
import os
import re
import threading
import zipfile
from collections.abc import Callable
from datetime import date, datetime, timezone
from typing import Any

from crypto_assets_tests.binance_standin.data import DAY_MS, KLINE_FIELDS, Row
from crypto_assets_tests.binance_standin.wire import NOT_FOUND_HTML, RawBody

ARCHIVE_PREFIX = "/data/spot/daily/klines/"
ARCHIVE_VARIANTS = frozenset(
    {"headered", "bad_checksum", "truncated", "missing", "republished", "zip_bomb", "oversized"}
)
BOMB_CSV_BYTES = 65 * 2**20
"""What the zip_bomb variant's CSV unpacks to (zeros, about 65 KB zipped)."""
OVERSIZED_FILE_BYTES = 33 * 2**20
"""How large the oversized variant's zip is: the day's CSV and random padding beside it."""
MICROSECONDS_FROM_DAY = "2025-01-01"
_DAILY_FILE = re.compile(
    r"^/data/spot/daily/klines/(?P<symbol>[A-Z0-9]+)/(?P<interval>\w+)/"
    r"(?P=symbol)-(?P=interval)-(?P<day>\d{4}-\d{2}-\d{2})\.zip(?P<checksum>\.CHECKSUM)?$"
)
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed, so the same rows always make the same bytes


def day_csv(rows: list[Row], day: str, *, header: bool = False) -> bytes:
    """A day's rows as the archive's CSV text (microsecond times from 2025-01-01)."""
    scale = 1000 if day >= MICROSECONDS_FROM_DAY else 1
    lines = [",".join(KLINE_FIELDS)] if header else []
    for row in rows:
        fields = list(row)
        fields[0], fields[6] = int(fields[0]) * scale, int(fields[6]) * scale
        lines.append(",".join(str(value) for value in fields))
    return ("\n".join(lines) + "\n").encode("ascii") if lines else b""


def day_zip(csv: bytes, csv_name: str) -> bytes:
    """A deflated zip holding the CSV. Fastest deflate level: the stand-in shares the benchmark's
    two cores, where Binance's servers would not."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        # A ZipInfo member takes its own compress_type (stored), not the archive's: say it here.
        archive.writestr(
            zipfile.ZipInfo(csv_name, date_time=_ZIP_TIME),
            csv,
            compress_type=zipfile.ZIP_DEFLATED,
            compresslevel=1,
        )
    return buffer.getvalue()


def _zip_bomb(csv_name: str, size: int) -> bytes:
    """A deflated zip whose CSV unpacks to ``size`` zero bytes: about a thousandth as large."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo(csv_name, date_time=_ZIP_TIME)
        info.compress_type = zipfile.ZIP_DEFLATED
        with archive.open(info, "w") as member:
            for _ in range(size // 2**20):
                member.write(bytes(2**20))
    return buffer.getvalue()


def _with_padding(csv: bytes, csv_name: str, size: int) -> bytes:
    """A valid zip of the CSV and a stored member of random bytes, ``size`` bytes or more."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr(zipfile.ZipInfo(csv_name, date_time=_ZIP_TIME), csv)
        archive.writestr(zipfile.ZipInfo("padding.bin", date_time=_ZIP_TIME), os.urandom(size))
    return buffer.getvalue()


class ArchiveEndpoints:
    """Mixin for BinanceStandIn: serves the archive's daily files from the REST candles."""

    clock_ms: Callable[[], int]
    _rows: dict[tuple[str, str], list[Row]]
    _times: dict[tuple[str, str], list[int]]
    _data_lock: threading.Lock

    def _init_archive(self) -> None:
        self.archive_variants: dict[str, str] = {}
        # The file whose CHECKSUM was served last, kept for the zip request that follows it.
        self._last_archive_file: tuple[tuple[str, str, str, str | None], bytes, str] | None = None

    def set_archive_variant(self, day: str, variant: str) -> None:
        """Serve ``day``'s file as ``variant`` (see ARCHIVE_VARIANTS) from now on."""
        if variant not in ARCHIVE_VARIANTS:
            raise ValueError(f"unknown archive variant {variant!r}; one of {ARCHIVE_VARIANTS}")
        self.archive_variants[day] = variant

    def archive_file(self, symbol: str, interval: str, day: str) -> tuple[bytes, str] | None:
        """The zip bytes and published SHA-256 of a day's file, or None when it is not out."""
        start = int(datetime.fromisoformat(day).replace(tzinfo=timezone.utc).timestamp() * 1000)
        published_until = int(self.clock_ms()) // DAY_MS * DAY_MS - DAY_MS
        variant = self.archive_variants.get(day)
        if start + DAY_MS > published_until or variant == "missing":
            return None
        with self._data_lock:
            times = self._times.get((symbol, interval), [])
            rows = self._rows.get((symbol, interval), [])
            lo, hi = bisect.bisect_left(times, start), bisect.bisect_left(times, start + DAY_MS)
            day_rows = [list(row) for row in rows[lo:hi]]
        if not day_rows:
            return None
        if variant == "republished":
            day_rows[0][8] = int(day_rows[0][8]) + 1
        name = f"{symbol}-{interval}-{day}"
        csv = day_csv(day_rows, day, header=variant == "headered")
        data = day_zip(csv, f"{name}.csv")
        if variant == "zip_bomb":
            data = _zip_bomb(f"{name}.csv", BOMB_CSV_BYTES)
        if variant == "oversized":
            data = _with_padding(csv, f"{name}.csv", OVERSIZED_FILE_BYTES)
        if variant == "truncated":
            data = data[: len(data) // 2]
        sha256 = hashlib.sha256(data).hexdigest()
        if variant == "bad_checksum":
            sha256 = hashlib.sha256(data + b"other").hexdigest()
        return data, sha256

    def _archive_prefix_routes(self) -> dict[str, Callable[[str, dict[str, str]], Any]]:
        return {ARCHIVE_PREFIX: self._archive_daily}

    def _archive_daily(self, path: str, _query: dict[str, str]) -> tuple[int, Any]:
        match = _DAILY_FILE.match(path)
        if match is None:
            return 404, RawBody(NOT_FOUND_HTML, "text/html")
        try:
            date.fromisoformat(match["day"])
        except ValueError:
            return 404, RawBody(NOT_FOUND_HTML, "text/html")
        key = (
            match["symbol"],
            match["interval"],
            match["day"],
            self.archive_variants.get(match["day"]),
        )
        cached = self._last_archive_file
        if cached is not None and cached[0] == key and not match["checksum"]:
            found: tuple[bytes, str] | None = cached[1:]
        else:
            found = self.archive_file(match["symbol"], match["interval"], match["day"])
            self._last_archive_file = None if found is None else (key, *found)
        if found is None:
            return 404, RawBody(NOT_FOUND_HTML, "text/html")
        data, sha256 = found
        if match["checksum"]:
            name = path.rsplit("/", 1)[-1].removesuffix(".CHECKSUM")
            return 200, RawBody(f"{sha256}  {name}".encode("ascii"), "text/plain")
        return 200, RawBody(data, "application/zip")
