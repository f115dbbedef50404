"""The Binance spot klines client: paging, rate limits, retries and the unclosed candle.

Built on python-binance's ``Client``, which supplies the HTTP session, signing and Binance's error
parsing; this module adds what a long backfill needs from a client and python-binance leaves to the
caller: a base URL that tests and mirrors can change, pacing under the per-minute weight budget,
``Retry-After`` on 429/418, bounded retries with jitter, and complete, closed, de-duplicated pages.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Iterator
from datetime import date, datetime, timezone

import requests
from binance.client import Client
from binance.exceptions import BinanceAPIException, BinanceRequestException

from crypto_assets.sources.pacing import RetryPolicy, WeightPacer
from crypto_assets.sources.urls import require_secure_url

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.binance.com"
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
INTERVAL_MS = {
    "1s": 1_000,
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
    "3d": 259_200_000,
    "1w": 604_800_000,
}
INTERVALS = (*INTERVAL_MS, "1M")
PAGE_LIMIT = 1000
KLINES_WEIGHT = 2
SYMBOL_PATTERN = re.compile(r"^[A-Z0-9]{2,20}$")
UNKNOWN_SYMBOL_CODE = -1121
WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1M"

Kline = list  # one kline as Binance sends it: 12 items, times and trades as ints, decimals as str


class BinanceError(RuntimeError):
    """A request Binance refused or that kept failing after every retry."""


class UnknownSymbolError(BinanceError, ValueError):
    """Binance does not list the symbol (its error -1121)."""


def validate_symbol(symbol: str) -> str:
    if not isinstance(symbol, str) or not SYMBOL_PATTERN.match(symbol):
        raise ValueError(
            f"Invalid symbol {symbol!r}: expected 2-20 upper-case letters or digits,"
            " e.g. 'BTCUSDT'."
        )
    return symbol


def validate_interval(interval: str) -> str:
    if interval not in INTERVALS:
        raise ValueError(f"Invalid interval {interval!r}: expected one of {', '.join(INTERVALS)}.")
    return interval


class BinanceKlinesClient:
    """Fetches closed klines from Binance's public REST API, politely and completely."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        api_secret: str | None = None,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        pacer: WeightPacer | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = require_secure_url(
            (base_url or os.environ.get("BINANCE_BASE_URL") or DEFAULT_BASE_URL).rstrip("/"),
            "BINANCE_BASE_URL",
        )
        self.retry = retry or RetryPolicy()
        self.pacer = pacer or WeightPacer()
        self._sleep = sleep
        self._client = Client(
            api_key=api_key or os.environ.get("BINANCE_API_KEY") or None,
            api_secret=api_secret or os.environ.get("BINANCE_API_SECRET") or None,
            requests_params={"timeout": timeout},
            ping=False,
        )
        self._client.API_URL = f"{self.base_url}/api"

    def __repr__(self) -> str:
        return f"BinanceKlinesClient(base_url={self.base_url!r})"

    def _call(self, what: str, weight: int, request: Callable[[], object]) -> object:
        """Runs one request with pacing and retries; returns the decoded JSON body."""
        last_problem = ""
        for attempt in range(self.retry.max_attempts):
            self.pacer.before_request(weight)
            try:
                body = request()
                self.pacer.observe(self._response_header(WEIGHT_HEADER))
                return body
            except BinanceAPIException as exc:
                self.pacer.observe(exc.response.headers.get(WEIGHT_HEADER))
                if exc.code == UNKNOWN_SYMBOL_CODE:
                    raise
                if exc.status_code in (418, 429):
                    wait = _retry_after_seconds(exc.response, default=self.retry.backoff(attempt))
                    if wait > self.retry.max_retry_after:
                        raise BinanceError(
                            f"{what}: Binance answered {exc.status_code} and asks to wait"
                            f" {wait:.0f}s,"
                            f" longer than the {self.retry.max_retry_after:.0f}s this client waits."
                        ) from exc
                    last_problem = f"HTTP {exc.status_code} (code {exc.code}): {exc.message}"
                    self._pause(what, last_problem, wait, attempt)
                    continue
                if exc.status_code >= 500:
                    last_problem = f"HTTP {exc.status_code}: {_short(exc.response.text)}"
                else:
                    raise BinanceError(
                        f"{what}: Binance refused the request with HTTP {exc.status_code},"
                        f" code {exc.code}: {exc.message}"
                    ) from exc
            except BinanceRequestException as exc:
                last_problem = f"malformed body: {_short(exc.message)}"
            except requests.RequestException as exc:
                last_problem = f"{type(exc).__name__}: {exc}"
            self._pause(what, last_problem, self.retry.backoff(attempt), attempt)
        raise BinanceError(
            f"{what} failed after {self.retry.max_attempts} attempts; last problem: {last_problem}"
        )

    def _pause(self, what: str, problem: str, wait: float, attempt: int) -> None:
        """Waits before the next attempt; after the last one there is nothing to wait for."""
        if attempt + 1 < self.retry.max_attempts:
            log.warning("%s failed (%s); retrying in %.1fs", what, problem, wait)
            self._sleep(wait)

    def _response_header(self, name: str) -> str | None:
        response = self._client.response
        return response.headers.get(name) if response is not None else None

    def server_time_ms(self) -> int:
        body = self._call("GET /api/v3/time", 1, self._client.get_server_time)
        if not isinstance(body, dict) or not isinstance(body.get("serverTime"), int):
            raise BinanceError(f"GET /api/v3/time returned an unexpected body: {_short(str(body))}")
        return body["serverTime"]

    def _klines_page(
        self,
        symbol: str,
        interval: str,
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int = PAGE_LIMIT,
    ) -> list[Kline]:
        since = _iso_utc(start_ms) if start_ms is not None else "the latest"
        what = f"GET /api/v3/klines {symbol} {interval} from {since}"
        window = {
            key: value
            for key, value in (("startTime", start_ms), ("endTime", end_ms and end_ms - 1))
            if value is not None
        }

        def request() -> list[Kline]:
            try:
                page = self._client.get_klines(
                    symbol=symbol, interval=interval, limit=limit, **window
                )
            except BinanceAPIException as exc:
                if exc.code == UNKNOWN_SYMBOL_CODE:
                    raise UnknownSymbolError(
                        f"Binance does not know the symbol {symbol!r} (error -1121: {exc.message})"
                    ) from exc
                raise
            if not _is_kline_page(page):
                raise BinanceRequestException(f"not a list of 12-field klines: {str(page)[:120]}")
            return page

        return self._call(what, KLINES_WEIGHT, request)  # type: ignore[return-value]

    def latest_closed_open_time(self, symbol: str, interval: str) -> int | None:
        """Open time of the newest closed kline, for three weight units (/time and 2 klines)."""
        validate_symbol(symbol)
        validate_interval(interval)
        server_now = self.server_time_ms()
        closed = [
            kline[0]
            for kline in self._klines_page(symbol, interval, limit=2)
            if kline[6] < server_now
        ]
        return closed[-1] if closed else None

    def recent_klines(self, symbol: str, interval: str, limit: int) -> list[Kline]:
        """The newest ``limit`` klines, the one still forming included (its close_time is in
        the future): what a page polls when the stream is down."""
        validate_symbol(symbol)
        validate_interval(interval)
        return self._klines_page(symbol, interval, limit=limit)

    def iter_kline_pages(
        self, symbol: str, interval: str, start_ms: int, end_ms: int
    ) -> Iterator[list[Kline]]:
        """Yields pages of closed klines with open_time in [start_ms, end_ms), in order.

        Each page starts after the last open_time already seen, so a page boundary never
        repeats or skips a candle; the candle still open at the server's time is dropped.
        """
        validate_symbol(symbol)
        validate_interval(interval)
        if start_ms >= end_ms:
            return
        server_now = self.server_time_ms()
        cursor = start_ms
        while cursor < end_ms:
            page = self._klines_page(symbol, interval, cursor, end_ms)
            closed = [
                kline for kline in page if cursor <= kline[0] < end_ms and kline[6] < server_now
            ]
            if closed:
                yield closed
            if len(page) < PAGE_LIMIT or len(closed) < len(page) or page[-1][0] < cursor:
                return
            cursor = page[-1][0] + 1

    def get_klines(
        self,
        symbol: str = "BTCUSDT",
        interval: str = "1h",
        start: TimeLike | None = None,
        end: TimeLike | None = None,
    ) -> list[Kline]:
        """Every closed kline with open_time in [start, end), exactly as Binance sent it."""
        start_ms, end_ms = time_range_ms(start, end)
        return [
            kline
            for page in self.iter_kline_pages(symbol, interval, start_ms, end_ms)
            for kline in page
        ]


TimeLike = int | str | datetime | date


def to_epoch_ms(value: TimeLike) -> int:
    """Epoch milliseconds from ms, an ISO date/time string or a date; naive times are UTC."""
    if isinstance(value, bool):
        raise TypeError(f"Not a time: {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError as exc:
            raise ValueError(f"Not an ISO date or time: {value!r} (e.g. '2024-01-01')") from exc
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return int(value.timestamp() * 1000)


def time_range_ms(start: TimeLike | None, end: TimeLike | None) -> tuple[int, int]:
    """[start, end) in epoch ms; no start means Binance's beginning, no end means now."""
    start_ms = to_epoch_ms(start) if start is not None else 0
    end_ms = to_epoch_ms(end) if end is not None else int(time.time() * 1000)
    if start_ms >= end_ms:
        raise ValueError(f"Empty time range: start {start!r} is not before end {end!r}.")
    return start_ms, end_ms


def get_klines(
    symbol: str = "BTCUSDT",
    interval: str = "1h",
    start: TimeLike | None = None,
    end: TimeLike | None = None,
) -> list[Kline]:
    """The capstone's entry point: closed klines in [start, end) from ``BINANCE_BASE_URL``."""
    return BinanceKlinesClient().get_klines(symbol, interval, start, end)


def _is_kline_page(page: object) -> bool:
    return isinstance(page, list) and all(
        isinstance(kline, list)
        and len(kline) == len(KLINE_FIELDS)
        and isinstance(kline[0], int)
        and isinstance(kline[6], int)
        for kline in page
    )


def _retry_after_seconds(response: requests.Response, default: float) -> float:
    value = response.headers.get("Retry-After", "")
    try:
        return max(float(value), 0.0)
    except ValueError:
        return default


def _iso_utc(epoch_ms: int) -> str:
    """2024-01-02T10:40:00Z: the day and minute a failing request was after, in its message."""
    return datetime.fromtimestamp(epoch_ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
