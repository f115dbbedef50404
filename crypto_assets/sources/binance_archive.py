"""Binance's public kline archive (data.binance.vision): one verified zip per closed UTC day.

A day of 1m candles is one small zip instead of two REST pages, so the whole history loads in
minutes. Every file comes with a ``.zip.CHECKSUM`` (``<sha256 hex>  <file name>``); bytes whose
SHA-256 does not match are fetched once more and then refused, never parsed. Only daily files are
used: monthly ones have disagreed with the daily files and with REST.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass

import requests

from crypto_assets.sources.pacing import RetryPolicy
from crypto_assets.sources.urls import require_secure_url

log = logging.getLogger(__name__)

DEFAULT_ARCHIVE_URL = "https://data.binance.vision"
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
MAX_FILE_BYTES = 32 * 2**20
"""Largest download accepted (a zip or its CHECKSUM). A day of 1s candles zips to about 4 MB."""
MAX_CSV_BYTES = 64 * 2**20
"""Largest CSV a zip may unpack to. A day of 1s candles is about 11 MB (86,400 rows of about 126
bytes, measured on the 1m file in /work/shared); a zip bomb from a
hostile mirror (which can publish a matching CHECKSUM) is refused before it is inflated."""
MICROSECONDS_FROM = 10**15
"""Spot files from 2025-01-01 on carry open/close times in microseconds; a millisecond time stays
below 10^15 until the year 33658, a microsecond one is above it since 2001."""


class ArchiveError(RuntimeError):
    """The archive answered something that cannot be loaded; names the file and why."""


class ArchiveDayMissing(ArchiveError):
    """The archive has no file for the day (404): not published yet, or never."""


class ChecksumMismatch(ArchiveError):
    """The file's SHA-256 differs from its published CHECKSUM, on two fetches in a row."""


@dataclass(frozen=True)
class ArchiveDay:
    """One day's CSV from the archive, with where it came from and its verified SHA-256."""

    url: str
    sha256: str
    csv: bytes


def daily_file_path(symbol: str, interval: str, day: str) -> str:
    """Path of a day's spot klines zip under the archive's base URL."""
    return f"data/spot/daily/klines/{symbol}/{interval}/{symbol}-{interval}-{day}.zip"


def parse_checksum(text: str, file_name: str) -> str:
    """The SHA-256 hex from a CHECKSUM body (``<hex>  <file name>``, trailing newline optional)."""
    fields = text.strip().split()
    if not fields or not SHA256_HEX.match(fields[0].lower()):
        raise ArchiveError(f"{file_name}.CHECKSUM is not '<sha256>  <file>': {text[:120]!r}")
    if len(fields) > 1 and fields[-1] != file_name:
        raise ArchiveError(f"{file_name}.CHECKSUM names another file: {fields[-1]!r}")
    return fields[0].lower()


def unzip_csv(data: bytes, file_name: str, max_csv_bytes: int = MAX_CSV_BYTES) -> bytes:
    """The one CSV inside a day's zip, refused unread when it would unpack to more than
    ``max_csv_bytes`` (zipfile never inflates past the size the zip declares)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = [info for info in archive.infolist() if info.filename.endswith(".csv")]
            if len(members) != 1:
                names = [info.filename for info in members]
                raise ArchiveError(f"{file_name} holds {names}, not exactly one CSV.")
            if members[0].file_size > max_csv_bytes:
                raise ArchiveError(
                    f"{file_name} would unpack to {members[0].file_size:,} bytes, over the"
                    f" {max_csv_bytes:,} a day's CSV may have; the day is not loaded."
                )
            return archive.read(members[0])
    except (zipfile.BadZipFile, EOFError, zipfile.LargeZipFile) as exc:
        raise ArchiveError(f"{file_name} is not a readable zip: {exc}") from exc


class BinanceArchiveClient:
    """Fetches and verifies daily kline files from Binance's archive (or a mirror of it)."""

    def __init__(
        self,
        base_url: str | None = None,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        max_file_bytes: int = MAX_FILE_BYTES,
    ) -> None:
        url = base_url if base_url is not None else os.environ.get("BINANCE_ARCHIVE_URL")
        self.base_url = require_secure_url(
            (DEFAULT_ARCHIVE_URL if url is None else url).rstrip("/"), "BINANCE_ARCHIVE_URL"
        )
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self.max_file_bytes = max_file_bytes
        self._session = requests.Session()

    def __repr__(self) -> str:
        return f"BinanceArchiveClient(base_url={self.base_url!r})"

    def day_url(self, symbol: str, interval: str, day: str) -> str:
        return f"{self.base_url}/{daily_file_path(symbol, interval, day)}"

    def _get(self, url: str) -> bytes:
        """GET with bounded retries on 5xx and network errors; 404 raises ArchiveDayMissing."""
        problem = ""
        for attempt in range(self.retry.max_attempts):
            try:
                with self._session.get(url, timeout=self.timeout, stream=True) as response:
                    if response.status_code == 404:
                        raise ArchiveDayMissing(f"{url} is not in the archive (404).")
                    if response.status_code == 200:
                        return self._capped_body(url, response)
                problem = f"HTTP {response.status_code}"
                if response.status_code < 500 and response.status_code != 429:
                    raise ArchiveError(f"GET {url} answered {problem}.")
            except requests.RequestException as exc:
                problem = f"{type(exc).__name__}: {exc}"
            if attempt + 1 < self.retry.max_attempts:
                wait = self.retry.backoff(attempt)
                log.warning("GET %s failed (%s); retrying in %.1fs", url, problem, wait)
                self._sleep(wait)
        raise ArchiveError(
            f"GET {url} failed after {self.retry.max_attempts} attempts; last problem: {problem}"
        )

    def _capped_body(self, url: str, response: requests.Response) -> bytes:
        """The body, read until it passes ``max_file_bytes``: then refused, not retried."""
        chunks, size = [], 0
        for chunk in response.iter_content(chunk_size=2**20):
            size += len(chunk)
            if size > self.max_file_bytes:
                raise ArchiveError(
                    f"GET {url} sent over {self.max_file_bytes:,} bytes, more than any day's file"
                    " has; the download was stopped and the day is not loaded."
                )
            chunks.append(chunk)
        return b"".join(chunks)

    def published_sha256(self, symbol: str, interval: str, day: str) -> str:
        """The SHA-256 the archive publishes for the day's file now (raises ArchiveDayMissing)."""
        url = self.day_url(symbol, interval, day)
        text = self._get(f"{url}.CHECKSUM").decode("utf-8", errors="replace")
        return parse_checksum(text, url.rsplit("/", 1)[-1])

    def fetch_day(self, symbol: str, interval: str, day: str) -> ArchiveDay:
        """The day's CSV, verified against its CHECKSUM; one more fetch on a mismatch, then fail."""
        url = self.day_url(symbol, interval, day)
        file_name = url.rsplit("/", 1)[-1]
        for attempt in (1, 2):
            expected = self.published_sha256(symbol, interval, day)
            data = self._get(url)
            actual = hashlib.sha256(data).hexdigest()
            if actual == expected:
                return ArchiveDay(url=url, sha256=actual, csv=unzip_csv(data, file_name))
            if attempt == 1:
                log.warning(
                    "%s: SHA-256 %s, CHECKSUM says %s; fetching again", url, actual, expected
                )
        raise ChecksumMismatch(
            f"{file_name}: SHA-256 of the downloaded file is {actual}, its CHECKSUM says"
            f" {expected} (fetched twice from {url}); the day is not loaded."
        )
