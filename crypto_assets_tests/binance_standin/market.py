"""The market-data endpoints (ping, time, exchangeInfo, klines) and the candles they serve.

Each endpoint returns the status and JSON object Binance would send for the query; request weight,
bans and injected faults are applied around it by the server.
"""

from __future__ import annotations

import bisect
import itertools
import json
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from crypto_assets_tests.binance_standin.data import INTERVAL_MS, Row, in_progress_view
from crypto_assets_tests.binance_standin.wire import Route, error, mandatory

SYMBOL_RE = re.compile(r"^[A-Z0-9\-_.]{1,20}$")
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


class MarketEndpoints:
    """Mixin for BinanceStandIn: holds the candles per (symbol, interval) and answers queries."""

    clock_ms: Callable[[], int]
    weight_limit: int
    partial_in_progress: bool

    def _init_market(self, klines: dict[tuple[str, str], list[Row]]) -> None:
        self._rows: dict[tuple[str, str], list[Row]] = {}
        self._times: dict[tuple[str, str], list[int]] = {}
        self._data_lock = threading.Lock()
        for (symbol, interval), rows in klines.items():
            self.add_klines(symbol, interval, rows)

    def _market_routes(self) -> dict[str, Route]:
        """Path -> (request weight, endpoint), with Binance's weights."""
        return {
            "/api/v3/ping": Route(1, lambda _q: (200, {})),
            "/api/v3/time": Route(1, lambda _q: (200, {"serverTime": int(self.clock_ms())})),
            "/api/v3/exchangeInfo": Route(20, self._exchange_info),
            "/api/v3/klines": Route(2, self._klines),
        }

    # ----------------------------------------------------------------- the candles

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

    def _symbols(self) -> set[str]:
        with self._data_lock:
            return {symbol for symbol, _ in self._rows}

    # ----------------------------------------------------------------- endpoints

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
                return error(
                    -1100,
                    "Illegal characters found in parameter 'symbols'; legal range is "
                    '\'^\\[("[A-Z0-9-_.]{1,20}"(,"[A-Z0-9-_.]{1,20}"){0,}){0,1}\\]$\'.',
                )
        else:
            wanted = held
        if any(symbol not in held for symbol in wanted):
            return error(-1121, "Invalid symbol.")
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
            "symbols": [symbol_info(symbol) for symbol in wanted],
        }

    def _klines(self, query: dict[str, str]) -> tuple[int, Any]:
        symbol = query.get("symbol", "")
        interval = query.get("interval", "")
        if not symbol:
            return mandatory("symbol")
        if not interval:
            return mandatory("interval")
        if not SYMBOL_RE.match(symbol) or symbol not in self._symbols():
            return error(-1121, "Invalid symbol.")
        if interval not in INTERVAL_MS:
            return error(-1120, "Invalid interval.")
        limit = 500
        if "limit" in query:
            raw = query["limit"]
            if not _UINT_RE.match(raw) or not 1 <= int(raw) <= 1000:
                return error(-1130, "Data sent for parameter 'limit' is not valid.")
            limit = int(raw)
        bounds: dict[str, int | None] = {}
        for name in ("startTime", "endTime"):
            raw = query.get(name)
            if raw is not None and not _UINT_RE.match(raw):
                return error(
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
            selected[-1] = in_progress_view(selected[-1], now)
        return 200, selected


# --------------------------------------------------------------------------- symbol details


def split_symbol(symbol: str) -> tuple[str, str]:
    """Base and quote asset, guessed from the known quote assets (BTCUSDT -> BTC, USDT)."""
    for quote in _QUOTE_ASSETS:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol[: -len(quote)], quote
    return symbol[:-4] or symbol, symbol[-4:]


def symbol_info(symbol: str) -> dict[str, Any]:
    """One ``symbols`` entry of exchangeInfo, shaped like Binance's for a spot pair."""
    base, quote = split_symbol(symbol)
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
