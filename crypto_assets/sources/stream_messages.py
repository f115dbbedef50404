"""What Binance's kline stream sends and what the stream client hands on, as typed values (no I/O).

A kline event (``{"e": "kline", "E": ..., "s": ..., "k": {...}}``, or wrapped as
``{"stream": ..., "data": ...}`` on a combined stream) becomes a ``Candle`` with the REST API's
column names and types, so a streamed candle and a candle fetched over REST compare equal field
for field and merge onto the warehouse's history. Anything else is either an event the client
acts on (``serverShutdown``), one it ignores, or a ``StreamMessageError`` naming what was wrong.
"""

from __future__ import annotations

import json
import random
import time
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from crypto_assets.sources.binance_rest import INTERVAL_MS, Kline, validate_symbol

SERVER_SHUTDOWN = "serverShutdown"
STATES = ("connecting", "connected", "reconnecting", "down", "stopped")
# The kline payload's keys, and the REST column each one fills.
_TEXT_FIELDS = {
    "o": "open",
    "h": "high",
    "l": "low",
    "c": "close",
    "v": "volume",
    "q": "quote_asset_volume",
    "V": "taker_base_vol",
    "Q": "taker_quote_vol",
}
_INTEGER_FIELDS = {"t": "open_time", "T": "close_time", "n": "num_trades"}


class StreamMessageError(ValueError):
    """A stream message the client cannot read; it is logged and skipped, never fatal."""


@dataclass(frozen=True, slots=True)
class Candle:
    """One kline in the REST API's columns and types: times and trades as ints (epoch ms),
    prices and volumes as Binance's decimal text. ``closed`` is False while it is forming."""

    symbol: str
    interval: str
    open_time: int
    open: str
    high: str
    low: str
    close: str
    volume: str
    close_time: int
    quote_asset_volume: str
    num_trades: int
    taker_base_vol: str
    taker_quote_vol: str
    closed: bool

    @classmethod
    def from_kline(cls, kline: Kline, symbol: str, interval: str) -> Candle:
        """A closed candle from a REST row (``KLINE_FIELDS`` order)."""
        return cls(
            symbol=symbol,
            interval=interval,
            open_time=int(kline[0]),
            open=kline[1],
            high=kline[2],
            low=kline[3],
            close=kline[4],
            volume=kline[5],
            close_time=int(kline[6]),
            quote_asset_volume=kline[7],
            num_trades=int(kline[8]),
            taker_base_vol=kline[9],
            taker_quote_vol=kline[10],
            closed=True,
        )

    def as_kline(self) -> Kline:
        """The REST row this candle would be (``KLINE_FIELDS`` order), for ``raw_frame``."""
        return [
            self.open_time,
            self.open,
            self.high,
            self.low,
            self.close,
            self.volume,
            self.close_time,
            self.quote_asset_volume,
            self.num_trades,
            self.taker_base_vol,
            self.taker_quote_vol,
            "0",
        ]


@dataclass(frozen=True, slots=True)
class KlineEvent:
    """A kline event: the candle and ``E``, when Binance pushed it (epoch ms)."""

    candle: Candle
    event_time_ms: int


@dataclass(frozen=True, slots=True)
class ServerShutdown:
    """Binance is about to drop the connection; the client reconnects before it does."""

    event_time_ms: int | None


@dataclass(frozen=True, slots=True)
class KlineUpdate:
    """One candle delivered: a forming update or a closed candle, from the stream or REST.

    ``event_time_ms`` is Binance's push time (``E``), None for a candle repaired over REST;
    ``received_at`` is this machine's epoch seconds when it arrived.
    """

    candle: Candle
    event_time_ms: int | None
    received_at: float
    source: str  # "stream" or "rest"


@dataclass(frozen=True, slots=True)
class StreamHealth:
    """What an operator asks of a live feed: is it up, since when, how fresh, how often it broke."""

    state: str  # one of STATES
    url: str
    connected_since: float | None  # epoch seconds of the current connection, None when not up
    last_message_at: float | None  # epoch seconds of the last message of any kind
    reconnects: int  # connections made after the first
    repaired_candles: int  # closed candles fetched over REST: missed while down, skipped, backfill
    malformed_messages: int
    last_error: str | None  # why the last connection ended or failed

    def message_age(self, now: float | None = None) -> float | None:
        """Seconds since the last message, None before the first."""
        if self.last_message_at is None:
            return None
        return (time.time() if now is None else now) - self.last_message_at


@dataclass(frozen=True, slots=True)
class StreamSnapshot:
    """The stream's state at one instant, consistent across its fields."""

    forming: Candle | None
    last_price: float | None
    last_event_time_ms: int | None  # E of the last kline event, to measure how late a page is
    closed: tuple[Candle, ...]  # closed candles in open-time order, at most ``max_closed``
    health: StreamHealth


@dataclass
class StreamState:
    """The stream client's mutable state, read and written under its lock."""

    state: str = "connecting"
    connected_since: float | None = None
    last_message_at: float | None = None
    reconnects: int = 0
    repaired: int = 0
    malformed: int = 0
    last_error: str | None = None
    forming: Candle | None = None
    last_price: float | None = None
    last_event_time_ms: int | None = None
    closed: deque[Candle] = field(default_factory=deque)

    def health(self, url: str) -> StreamHealth:
        return StreamHealth(
            state=self.state,
            url=url,
            connected_since=self.connected_since,
            last_message_at=self.last_message_at,
            reconnects=self.reconnects,
            repaired_candles=self.repaired,
            malformed_messages=self.malformed,
            last_error=self.last_error,
        )

    def snapshot(self, url: str) -> StreamSnapshot:
        return StreamSnapshot(
            forming=self.forming,
            last_price=self.last_price,
            last_event_time_ms=self.last_event_time_ms,
            closed=tuple(self.closed),
            health=self.health(url),
        )


def stream_name(symbol: str, interval: str) -> str:
    """``btcusdt@kline_1m``: Binance names streams in lower case."""
    return f"{symbol.lower()}@kline_{interval}"


def stream_url(base_url: str, symbol: str, interval: str, *, combined: bool = False) -> str:
    """The raw stream ``<base>/ws/<stream>``, or the combined ``<base>/stream?streams=<stream>``.

    A base URL that is not ws:// or wss:// is refused here, naming ``BINANCE_STREAM_URL``,
    rather than failing on every reconnect.
    """
    validate_symbol(symbol)
    if interval not in INTERVAL_MS:
        raise ValueError(
            f"Invalid stream interval {interval!r}: expected one of {', '.join(INTERVAL_MS)}."
        )
    parts = urlsplit(base_url)
    if parts.scheme not in ("ws", "wss") or not parts.netloc:
        raise ValueError(
            f"BINANCE_STREAM_URL={base_url!r} is not a websocket URL;"
            " expected e.g. wss://stream.binance.com:9443."
        )
    name = stream_name(symbol, interval)
    base = base_url.rstrip("/")
    return f"{base}/stream?streams={name}" if combined else f"{base}/ws/{name}"


def parse_message(
    text: str | bytes, symbol: str, interval: str
) -> KlineEvent | ServerShutdown | None:
    """The event in one message, or None for a message this client has no use for
    (a subscription answer, another stream's event). Raises ``StreamMessageError``."""
    try:
        message = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise StreamMessageError(f"not JSON: {_excerpt(text)}") from exc
    if not isinstance(message, dict):
        raise StreamMessageError(f"not a JSON object: {_excerpt(text)}")
    event = message.get("data", message.get("event", message))
    if not isinstance(event, dict):
        raise StreamMessageError(f"an event that is not an object: {_excerpt(text)}")
    kind = event.get("e")
    if kind == SERVER_SHUTDOWN:
        event_time = event.get("E")
        return ServerShutdown(event_time if _is_int(event_time) else None)
    if kind != "kline":
        return None
    return KlineEvent(_candle(event, symbol, interval, text), _integer(event, "E", text))


def _candle(event: dict[str, Any], symbol: str, interval: str, text: str | bytes) -> Candle:
    kline = event.get("k")
    if not isinstance(kline, dict):
        raise StreamMessageError(f"a kline event without its 'k' object: {_excerpt(text)}")
    if event.get("s") != symbol or kline.get("s", symbol) != symbol or kline.get("i") != interval:
        raise StreamMessageError(
            f"a kline for {event.get('s')!r} {kline.get('i')!r}, not {symbol} {interval}:"
            f" {_excerpt(text)}"
        )
    closed = kline.get("x")
    if not isinstance(closed, bool):
        raise StreamMessageError(f"'x' (closed) is {closed!r}, not true/false: {_excerpt(text)}")
    values: dict[str, Any] = {
        column: _integer(kline, key, text) for key, column in _INTEGER_FIELDS.items()
    }
    values.update({column: _decimal(kline, key, text) for key, column in _TEXT_FIELDS.items()})
    if values["close_time"] != values["open_time"] + INTERVAL_MS[interval] - 1:
        raise StreamMessageError(
            f"close time {values['close_time']} does not end the {interval} candle opening at"
            f" {values['open_time']}: {_excerpt(text)}"
        )
    return Candle(symbol=symbol, interval=interval, closed=closed, **values)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _integer(payload: dict[str, Any], key: str, text: str | bytes) -> int:
    value = payload.get(key)
    if not _is_int(value):
        raise StreamMessageError(f"{key!r} is {value!r}, not an integer: {_excerpt(text)}")
    return value


def _decimal(payload: dict[str, Any], key: str, text: str | bytes) -> str:
    value = payload.get(key)
    try:
        if isinstance(value, str) and Decimal(value).is_finite():
            return value
    except InvalidOperation:
        pass
    raise StreamMessageError(f"{key!r} is {value!r}, not decimal text: {_excerpt(text)}")


def _excerpt(text: str | bytes, limit: int = 120) -> str:
    shown = repr(text[:limit])
    return shown + ("..." if len(text) > limit else "")


def reconnect_delay(
    attempt: int, base: float, cap: float, rng: random.Random | None = None
) -> float:
    """Seconds before reconnect ``attempt`` (0 first): exponential up to ``cap``, half of it
    jittered, so clients dropped together do not return together yet never retry at once."""
    ceiling = min(cap, base * 2 ** min(attempt, 32))
    return ceiling / 2 + (rng or random).uniform(0, ceiling / 2)
