"""A local stand-in for the Binance spot REST API, used by tests instead of the real exchange.

Why: there is no internet here, and mocking `requests` would never show how our client copes with
what Binance really does on the wire: paging with ``limit``/``startTime``/``endTime``, the unclosed
last candle, request-weight headers, 429 then 418 bans, 5xx pages, truncated or malformed bodies and
dropped connections. This module serves that behaviour over real HTTP on 127.0.0.1 so the
python-binance based client can be pointed at it by base URL.

Run it by hand:
``python -m crypto_assets_tests.binance_standin --port 8765 --synthetic-days 3``.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import csv
import gc
import itertools
import json
import math
import os
import pathlib
import re
import signal
import socket
import socketserver
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np

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

_SECOND_MS = 1_000
_MINUTE_MS = 60 * _SECOND_MS
_HOUR_MS = 60 * _MINUTE_MS
_DAY_MS = 24 * _HOUR_MS

INTERVAL_MS: dict[str, int] = {
    "1s": _SECOND_MS,
    "1m": _MINUTE_MS,
    "3m": 3 * _MINUTE_MS,
    "5m": 5 * _MINUTE_MS,
    "15m": 15 * _MINUTE_MS,
    "30m": 30 * _MINUTE_MS,
    "1h": _HOUR_MS,
    "2h": 2 * _HOUR_MS,
    "4h": 4 * _HOUR_MS,
    "6h": 6 * _HOUR_MS,
    "8h": 8 * _HOUR_MS,
    "12h": 12 * _HOUR_MS,
    "1d": _DAY_MS,
    "3d": 3 * _DAY_MS,
    "1w": 7 * _DAY_MS,
    # Calendar months on Binance; a fixed 30 days is good enough for synthetic data.
    "1M": 30 * _DAY_MS,
}

# Binance weeks open on Monday 00:00 UTC; 1970-01-01 was a Thursday, so the grid is shifted 4 days.
_GRID_OFFSET_MS = {"1w": 4 * _DAY_MS}

FAULTS = frozenset({"429", "418", "500", "502", "503", "truncated", "malformed", "slow", "reset"})

JSON_CONTENT_TYPE = "application/json;charset=UTF-8"
HTML_CONTENT_TYPE = "text/html"
NOT_FOUND_HTML = b"<html><body><h2>404 Not found</h2></body></html>"
BAD_GATEWAY_HTML = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n"
)
MALFORMED_KLINES = b'[[1704067200000,"4228'

_SYMBOL_RE = re.compile(r"^[A-Z0-9\-_.]{1,20}$")
_UINT_RE = re.compile(r"^[0-9]{1,20}$")
_QUOTE_ASSETS = (
    "FDUSD",
    "USDT",
    "USDC",
    "TUSD",
    "BUSD",
    "DAI",
    "EUR",
    "TRY",
    "BRL",
    "BTC",
    "ETH",
    "BNB",
)
_TOO_MUCH_WEIGHT = (
    "Too much request weight used; current limit is {limit} request weight per 1 MINUTE. "
    "Please use WebSocket Streams for live updates to avoid polling the API."
)
_BANNED = (
    "Way too much request weight used; IP banned until {until}. "
    "Please use WebSocket Streams for live updates to avoid bans."
)

Row = list[Any]
Headers = list[tuple[str, str]]


def shared_data_dir() -> pathlib.Path:
    """Where the read-only real Binance klines live (``<repo>/../shared/data/binance``).

    Kept outside the repository on purpose; tests must skip when it is absent.
    """
    repo_root = pathlib.Path(__file__).resolve().parent.parent
    return repo_root.parent / "shared" / "data" / "binance"


# --------------------------------------------------------------------------- data helpers


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
    minutes = step / _MINUTE_MS
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


def _in_progress_view(row: Row, now_ms: int) -> Row:
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


def _split_symbol(symbol: str) -> tuple[str, str]:
    for quote in _QUOTE_ASSETS:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol[: -len(quote)], quote
    return symbol[:-4] or symbol, symbol[-4:]


def _symbol_info(symbol: str) -> dict[str, Any]:
    base, quote = _split_symbol(symbol)
    return {
        "symbol": symbol,
        "status": "TRADING",
        "baseAsset": base,
        "baseAssetPrecision": 8,
        "quoteAsset": quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": [
            "LIMIT",
            "LIMIT_MAKER",
            "MARKET",
            "STOP_LOSS",
            "STOP_LOSS_LIMIT",
            "TAKE_PROFIT",
            "TAKE_PROFIT_LIMIT",
        ],
        "icebergAllowed": True,
        "ocoAllowed": True,
        "otoAllowed": True,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": True,
        "cancelReplaceAllowed": True,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": True,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": "0.01000000",
                "maxPrice": "1000000.00000000",
                "tickSize": "0.01000000",
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": "0.00001000",
                "maxQty": "9000.00000000",
                "stepSize": "0.00001000",
            },
        ],
        "permissions": [],
        "permissionSets": [["SPOT", "MARGIN"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": [
            "NONE",
            "EXPIRE_TAKER",
            "EXPIRE_MAKER",
            "EXPIRE_BOTH",
        ],
    }


def _error(code: int, msg: str, status: int = 400) -> tuple[int, dict[str, Any]]:
    return status, {"code": code, "msg": msg}


def _mandatory(name: str) -> tuple[int, dict[str, Any]]:
    return _error(
        -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    )


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode("utf-8")


# --------------------------------------------------------------------------- HTTP plumbing


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    standin: BinanceStandIn

    def server_bind(self) -> None:
        # Skip HTTPServer's getfqdn(), which can stall on machines without DNS.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "binance-standin"
    sys_version = ""
    timeout = 30  # idle keep-alive connections are closed after this many seconds
    server: _Server

    def version_string(self) -> str:
        return self.server_version

    def setup(self) -> None:
        super().setup()
        self.server.standin._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.standin._track(self.connection, add=False)

    def do_GET(self) -> None:
        self.server.standin._serve(self)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence per-request logging; the stand-in keeps its own structured log."""


class _Fault:
    __slots__ = ("delay", "kind", "remaining")

    def __init__(self, kind: str, remaining: int, delay: float) -> None:
        self.kind = kind
        self.remaining = remaining
        self.delay = delay


# --------------------------------------------------------------------------- the stand-in


class BinanceStandIn:
    """A Binance spot REST API on 127.0.0.1 serving given klines, with Binance's limits and faults.

    Serves ``/api/v3/ping``, ``/api/v3/time``, ``/api/v3/exchangeInfo`` and ``/api/v3/klines``.
    ``clock_ms`` is the exchange's "now" (which candles exist, which one is still open);
    the request-weight window follows ``wall_clock`` (real time unless a test freezes it).
    With ``partial_in_progress`` the unclosed last candle shows only the volume traded so far.
    """

    def __init__(
        self,
        klines: dict[tuple[str, str], list[Row]],
        *,
        weight_limit: int = 6000,
        window_seconds: float = 60.0,
        ban_seconds: float = 2.0,
        clock_ms: Callable[[], int] | None = None,
        wall_clock: Callable[[], float] | None = None,
        partial_in_progress: bool = True,
        port: int = 0,
    ) -> None:
        if window_seconds <= 0 or ban_seconds < 0 or weight_limit < 0:
            raise ValueError("window_seconds must be > 0, ban_seconds and weight_limit >= 0")
        self.weight_limit = weight_limit
        self.window_seconds = float(window_seconds)
        self.ban_seconds = float(ban_seconds)
        self.clock_ms: Callable[[], int] = clock_ms or (lambda: int(time.time() * 1000))
        self.wall_clock: Callable[[], float] = wall_clock or time.time
        self.partial_in_progress = partial_in_progress
        self.url = ""
        self.port = port
        self.requests: list[dict[str, Any]] = []
        self.served_429 = 0
        self.served_418 = 0

        self._rows: dict[tuple[str, str], list[Row]] = {}
        self._times: dict[tuple[str, str], list[int]] = {}
        self._data_lock = threading.Lock()
        for (symbol, interval), rows in klines.items():
            self.add_klines(symbol, interval, rows)

        self._lock = threading.Lock()  # weight window, ban, faults, log, counters
        self._window_index: int | None = None
        self._used = 0
        self._after_429: int | None = None  # requests since the first 429 of this window
        self._ban_until: float | None = None
        self._faults: dict[str, list[_Fault]] = {}
        self._routes: dict[str, tuple[int, Callable[[dict[str, str]], tuple[int, Any]]]] = {
            "/api/v3/ping": (1, lambda _q: (200, {})),
            "/api/v3/time": (1, lambda _q: (200, {"serverTime": int(self.clock_ms())})),
            "/api/v3/exchangeInfo": (20, self._exchange_info),
            "/api/v3/klines": (2, self._klines),
        }
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> BinanceStandIn:
        """Bind 127.0.0.1 (a free port unless one was given) and serve in a daemon thread."""
        if self._server is not None:
            return self
        server = _Server(("127.0.0.1", self.port), _Handler)
        server.standin = self
        self._server = server
        self.port = int(server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"binance-standin-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and drop open keep-alive connections, so clients cannot keep talking."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None

    def __enter__(self) -> BinanceStandIn:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _track(self, connection: socket.socket, *, add: bool) -> None:
        with self._connections_lock:
            if add:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    # ----------------------------------------------------------------- test controls

    def inject(
        self, fault: str, count: int = 1, *, path: str = "/api/v3/klines", delay: float = 0
    ) -> None:
        """Make the next ``count`` requests to ``path`` fail with ``fault`` (queued in order).

        ``delay`` seconds are waited before any fault; "slow" then answers normally.
        """
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; choose from {sorted(FAULTS)}")
        if count < 1:
            raise ValueError("count must be >= 1")
        with self._lock:
            self._faults.setdefault(path, []).append(_Fault(fault, count, float(delay)))

    def clear_faults(self) -> None:
        """Forget faults that were injected but not yet served."""
        with self._lock:
            self._faults.clear()

    @property
    def used_weight(self) -> int:
        """Weight used in the current window, as the next response header would count it."""
        with self._lock:
            self._roll_window(self.wall_clock())
            return self._used

    def add_klines(self, symbol: str, interval: str, rows: Iterable[Sequence[Any]]) -> None:
        """Add candles (a new one appearing, a backfill); a known open_time is replaced."""
        new = sorted((list(row) for row in rows), key=lambda row: int(row[0]))
        key = (symbol, interval)
        with self._data_lock:
            existing = self._rows.setdefault(key, [])
            times = self._times.setdefault(key, [])
            if not times or (new and int(new[0][0]) > times[-1]):
                strictly_increasing = all(int(a[0]) < int(b[0]) for a, b in itertools.pairwise(new))
                if strictly_increasing:
                    existing.extend(new)
                    times.extend(int(row[0]) for row in new)
                    return
            merged = dict(zip(times, existing, strict=True))
            for row in new:
                merged[int(row[0])] = row
            ordered = sorted(merged)
            self._rows[key] = [merged[t] for t in ordered]
            self._times[key] = ordered

    def replace_kline(self, symbol: str, interval: str, open_time: int, row: Sequence[Any]) -> None:
        """Serve ``row`` in the slot of the candle opening at ``open_time`` (e.g. a corrupt candle).

        The slot keeps its place even if ``row`` itself carries a different open_time.
        """
        key = (symbol, interval)
        with self._data_lock:
            times = self._times.get(key, [])
            index = bisect.bisect_left(times, open_time)
            if index == len(times) or times[index] != open_time:
                raise KeyError(f"no {symbol} {interval} candle opens at {open_time}")
            self._rows[key][index] = list(row)

    # ----------------------------------------------------------------- endpoints

    def _symbols(self) -> set[str]:
        with self._data_lock:
            return {symbol for symbol, _ in self._rows}

    def _exchange_info(self, query: dict[str, str]) -> tuple[int, Any]:
        held = sorted(self._symbols())
        if "symbol" in query:
            wanted = [query["symbol"]]
        elif "symbols" in query:
            try:
                wanted = json.loads(query["symbols"])
            except ValueError:
                wanted = None
            if not isinstance(wanted, list) or not all(isinstance(s, str) for s in wanted):
                return _error(
                    -1100,
                    "Illegal characters found in parameter 'symbols'; legal range is "
                    '\'^\\[("[A-Z0-9-_.]{1,20}"(,"[A-Z0-9-_.]{1,20}"){0,}){0,1}\\]$\'.',
                )
        else:
            wanted = held
        if any(symbol not in held for symbol in wanted):
            return _error(-1121, "Invalid symbol.")
        return 200, {
            "timezone": "UTC",
            "serverTime": int(self.clock_ms()),
            "rateLimits": [
                {
                    "rateLimitType": "REQUEST_WEIGHT",
                    "interval": "MINUTE",
                    "intervalNum": 1,
                    "limit": self.weight_limit,
                },
                {
                    "rateLimitType": "ORDERS",
                    "interval": "SECOND",
                    "intervalNum": 10,
                    "limit": 100,
                },
                {
                    "rateLimitType": "RAW_REQUESTS",
                    "interval": "MINUTE",
                    "intervalNum": 5,
                    "limit": 61000,
                },
            ],
            "exchangeFilters": [],
            "symbols": [_symbol_info(symbol) for symbol in wanted],
        }

    def _klines(self, query: dict[str, str]) -> tuple[int, Any]:
        symbol = query.get("symbol", "")
        interval = query.get("interval", "")
        if not symbol:
            return _mandatory("symbol")
        if not interval:
            return _mandatory("interval")
        if not _SYMBOL_RE.match(symbol) or symbol not in self._symbols():
            return _error(-1121, "Invalid symbol.")
        if interval not in INTERVAL_MS:
            return _error(-1120, "Invalid interval.")
        limit = 500
        if "limit" in query:
            raw = query["limit"]
            if not _UINT_RE.match(raw) or not 1 <= int(raw) <= 1000:
                return _error(-1130, "Data sent for parameter 'limit' is not valid.")
            limit = int(raw)
        bounds: dict[str, int | None] = {}
        for name in ("startTime", "endTime"):
            raw = query.get(name)
            if raw is not None and not _UINT_RE.match(raw):
                return _error(
                    -1100,
                    f"Illegal characters found in parameter '{name}'; "
                    "legal range is '^[0-9]{1,20}$'.",
                )
            bounds[name] = None if raw is None else int(raw)
        start, end = bounds["startTime"], bounds["endTime"]
        now = int(self.clock_ms())
        if start is not None and end is not None and start > end:
            return 200, []
        last = now if end is None else min(end, now)
        with self._data_lock:
            rows = self._rows.get((symbol, interval), [])
            times = self._times.get((symbol, interval), [])
            hi = bisect.bisect_right(times, last)
            if start is None:
                selected = rows[max(0, hi - limit) : hi]
            else:
                lo = bisect.bisect_left(times, start)
                selected = rows[lo : min(hi, lo + limit)]
        if self.partial_in_progress and selected:
            selected[-1] = _in_progress_view(selected[-1], now)
        return 200, selected

    # ----------------------------------------------------------------- weight and bans

    def _roll_window(self, now: float) -> None:
        index = math.floor(now / self.window_seconds)
        if index != self._window_index:
            self._window_index = index
            self._used = 0
            self._after_429 = None

    def _banned_answer(self, retry_after: int) -> tuple[int, bytes, Headers]:
        assert self._ban_until is not None
        self.served_418 += 1
        body = _dumps({"code": -1003, "msg": _BANNED.format(until=int(self._ban_until * 1000))})
        return 418, body, [("Retry-After", str(max(1, retry_after)))]

    def _admit(self, weight: int, now: float) -> tuple[tuple[int, bytes, Headers] | None, int]:
        """Charge ``weight`` and decide whether Binance would refuse the request (429/418)."""
        self._roll_window(now)
        self._used += weight
        used = self._used
        if self._ban_until is not None:
            if now < self._ban_until:
                return self._banned_answer(math.ceil(self._ban_until - now - 1e-9)), used
            self._ban_until = None
            self._after_429 = None
        if self._after_429 is not None:
            self._after_429 += 1
            if self._after_429 >= 3:
                self._ban_until = now + self.ban_seconds
                return self._banned_answer(math.ceil(self.ban_seconds)), used
        if used > self.weight_limit:
            if self._after_429 is None:
                self._after_429 = 0
            self.served_429 += 1
            assert self._window_index is not None
            window_end = (self._window_index + 1) * self.window_seconds
            retry_after = max(1, math.ceil(window_end - now - 1e-9))
            body = _dumps({"code": -1003, "msg": _TOO_MUCH_WEIGHT.format(limit=self.weight_limit)})
            return (429, body, [("Retry-After", str(retry_after))]), used
        return None, used

    # ----------------------------------------------------------------- request handling

    def _take_fault(self, path: str) -> _Fault | None:
        with self._lock:
            queue = self._faults.get(path)
            if not queue:
                return None
            fault = queue[0]
            fault.remaining -= 1
            if fault.remaining <= 0:
                queue.pop(0)
            return fault

    def _normal_answer(self, path: str, query: dict[str, list[str]]) -> tuple[int, bytes, str]:
        route = self._routes.get(path)
        if route is None:
            return 404, NOT_FOUND_HTML, HTML_CONTENT_TYPE
        duplicated = sorted(name for name, values in query.items() if len(values) > 1)
        if duplicated:
            status, obj = _error(-1101, f"Duplicate values for parameter '{duplicated[0]}'.")
        else:
            status, obj = route[1]({name: values[0] for name, values in query.items()})
        return status, _dumps(obj), JSON_CONTENT_TYPE

    def _serve(self, handler: _Handler) -> None:
        received = self.wall_clock()
        parts = urlsplit(handler.path)
        path = parts.path
        query = parse_qs(parts.query, keep_blank_values=True)
        params = {name: values[0] for name, values in query.items()}
        route = self._routes.get(path)
        weight = route[0] if route is not None else 0

        fault = self._take_fault(path)
        if fault is not None and fault.delay > 0:
            time.sleep(fault.delay)
        kind = None if fault is None or fault.kind == "slow" else fault.kind

        with self._lock:
            if kind is None:
                refusal, used = self._admit(weight, self.wall_clock())
            else:
                self._roll_window(self.wall_clock())
                self._used += weight
                used, refusal = self._used, None
                if kind == "429":
                    self.served_429 += 1
                elif kind == "418":
                    self.served_418 += 1

        headers: Headers = [
            ("X-MBX-USED-WEIGHT", str(used)),
            ("X-MBX-USED-WEIGHT-1M", str(used)),
        ]
        content_type = JSON_CONTENT_TYPE
        declared: int | None = None
        if refusal is not None:
            status, body, extra = refusal
            headers += extra
        elif kind is None:
            status, body, content_type = self._normal_answer(path, query)
        elif kind == "429":
            status = 429
            body = _dumps({"code": -1003, "msg": _TOO_MUCH_WEIGHT.format(limit=self.weight_limit)})
            headers.append(("Retry-After", "1"))
        elif kind == "418":
            status = 418
            until = int((self.wall_clock() + 1) * 1000)
            body = _dumps({"code": -1003, "msg": _BANNED.format(until=until)})
            headers.append(("Retry-After", "1"))
        elif kind == "500":
            status = 500
            body = _dumps(
                {"code": -1000, "msg": "An unknown error occurred while processing the request."}
            )
        elif kind == "503":
            status = 503
            body = _dumps(
                {
                    "code": -1001,
                    "msg": "Internal error; unable to process your request. Please try again.",
                }
            )
        elif kind == "502":
            status, body, content_type = 502, BAD_GATEWAY_HTML, HTML_CONTENT_TYPE
        elif kind == "malformed":
            _, whole, content_type = self._normal_answer(path, query)
            status = 200
            body = whole[: len(whole) // 2] if len(whole) > 2 else whole[:1]
            if path == "/api/v3/klines" and len(body) < len(MALFORMED_KLINES):
                body = MALFORMED_KLINES
        elif kind == "truncated":
            _, whole, content_type = self._normal_answer(path, query)
            status = 200
            declared = len(whole) + 64
            body = whole[: max(1, len(whole) // 2)]
        else:  # "reset"
            status, body = 0, b""

        self._log(path, params, status, used, received, fault)
        if kind == "reset":
            self._reset(handler)
            return
        self._send(handler, status, body, content_type, headers, declared)

    def _log(
        self,
        path: str,
        params: dict[str, str],
        status: int,
        used: int,
        received: float,
        fault: _Fault | None,
    ) -> None:
        entry = {
            "path": path,
            "params": params,
            "status": status,
            "weight_used": used,
            "time": received,
            "fault": None if fault is None else fault.kind,
        }
        with self._lock:
            self.requests.append(entry)

    @staticmethod
    def _send(
        handler: _Handler,
        status: int,
        body: bytes,
        content_type: str,
        headers: Headers,
        declared_length: int | None,
    ) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header(
            "Content-Length", str(len(body) if declared_length is None else declared_length)
        )
        for name, value in headers:
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body)
        if declared_length is not None:
            # Promised more than was sent: hang up so the client sees a short read.
            handler.wfile.flush()
            handler.close_connection = True

    @staticmethod
    def _reset(handler: _Handler) -> None:
        """Drop the connection with a TCP RST and no answer, like a load balancer giving up."""
        handler.close_connection = True
        try:
            handler.connection.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
            handler.connection.close()
        except OSError:
            pass


# --------------------------------------------------------------------------- command line


def _series_from_file_name(path: str) -> tuple[str, str]:
    parts = pathlib.Path(path).stem.split("-")
    if len(parts) < 2 or not _SYMBOL_RE.match(parts[0]) or parts[1] not in INTERVAL_MS:
        raise ValueError(f"{path}: expected a name like BTCUSDT-1m-2025-08-01_2025-08-10.csv")
    return parts[0], parts[1]


def main(argv: Sequence[str] | None = None) -> int:
    """Serve klines in the foreground for manual runs and demos."""
    parser = argparse.ArgumentParser(description="Binance REST API stand-in on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--csv", action="extend", nargs="+", default=[], metavar="FILE")
    parser.add_argument(
        "--synthetic-days",
        type=int,
        default=None,
        metavar="N",
        help="serve N days of synthetic BTCUSDT 1m klines ending yesterday (UTC)",
    )
    parser.add_argument("--weight-limit", type=int, default=6000)
    args = parser.parse_args(argv)

    klines: dict[tuple[str, str], list[Row]] = {}
    if args.synthetic_days:
        end = int(time.time() * 1000) // _DAY_MS * _DAY_MS
        klines[("BTCUSDT", "1m")] = synthetic_klines("1m", end - args.synthetic_days * _DAY_MS, end)
    for path in args.csv:
        try:
            key = _series_from_file_name(path)
        except ValueError as exc:
            parser.error(str(exc))
        merged = {row[0]: row for row in klines.get(key, [])}
        merged.update((row[0], row) for row in load_klines_csv(path))
        klines[key] = [merged[t] for t in sorted(merged)]
    if not klines:
        parser.error("nothing to serve: give --csv FILE and/or --synthetic-days N")

    standin = BinanceStandIn(klines, weight_limit=args.weight_limit, port=args.port)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    standin.start()
    print(standin.url, flush=True)
    for (symbol, interval), rows in sorted(klines.items()):
        print(f"  {symbol} {interval}: {len(rows)} candles", file=sys.stderr, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        standin.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
