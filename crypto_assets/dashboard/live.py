"""The live half of the page: the forming candle, the last price and the candles the warehouse
does not have yet, from one stream connection per dashboard server, REST when it is down.

Binance limits websocket connections per IP, so every viewer of a server shares one
``LiveFeed`` (the page keeps it as a Streamlit resource). When the stream is not delivering
(unreachable, reconnecting, silent for ``stale_seconds``) the feed polls REST every
``poll_seconds``; a 429 (or 418) makes it back off, doubling up to ``MAX_BACKOFF_SECONDS``, and
the page says so. Memory is bounded: the forming candle and at most ``max_candles`` closed ones,
and the page forgets those the warehouse has loaded.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import pandas as pd

from crypto_assets.settings import KLINES, binance_stream_url
from crypto_assets.sources.binance_rest import BinanceError, BinanceKlinesClient
from crypto_assets.sources.binance_stream import KlineStream
from crypto_assets.sources.pacing import RetryPolicy
from crypto_assets.sources.stream_messages import Candle, StreamHealth

POLL_SECONDS = 3.0
STALE_SECONDS = 10.0
"""Binance pushes a 1m kline every 2 s; five missed pushes mean the page should not trust it."""
MAX_CANDLES = 720
SEED_CANDLES = 90
MIN_BACKOFF_SECONDS, MAX_BACKOFF_SECONDS = 5.0, 60.0
NOT_IN_WAREHOUSE, FORMING = "not yet in the warehouse", "forming"
LIVE_COLUMNS = ("open", "high", "low", "close", "volume", "taker_base_vol", "num_trades")


@dataclass(frozen=True)
class LiveState:
    """What the page draws from the feed at one instant."""

    source: str  # "stream", "rest" or "none"
    forming: Candle | None
    last_price: float | None
    pushed_at_ms: int | None  # Binance's push time (stream) or when REST answered
    closed: tuple[Candle, ...]  # closed candles, oldest first, at most max_candles
    health: StreamHealth
    notice: str | None  # what the page must say: stream down, REST backing off
    rest_polls: int
    rest_backoff_seconds: float | None


def is_rate_limit(error: BinanceError) -> bool:
    """A refusal that asks us to slow down (429) or that bans the IP for a while (418)."""
    text = str(error)
    return any(f"HTTP {code}" in text or f"answered {code}" in text for code in (418, 429))


class LiveFeed:
    """One stream connection plus the REST fallback, read by every viewer of the server."""

    def __init__(
        self,
        stream: KlineStream,
        rest: BinanceKlinesClient,
        *,
        poll_seconds: float = POLL_SECONDS,
        stale_seconds: float = STALE_SECONDS,
        max_candles: int = MAX_CANDLES,
        seed_candles: int = SEED_CANDLES,
    ) -> None:
        self.stream = stream
        self.rest = rest
        self.poll_seconds = poll_seconds
        self.stale_seconds = stale_seconds
        self.max_candles = max_candles
        self.seed_candles = seed_candles
        self._lock = threading.Lock()
        self._rest_closed: deque[Candle] = deque(maxlen=max_candles)
        self._rest_forming: Candle | None = None
        self._rest_at: float | None = None
        self._rest_problem: str | None = None
        self._rest_polls = 0
        self._backoff: float | None = None
        self._backoff_until = 0.0
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> LiveFeed:
        stream = KlineStream(
            KLINES.symbol,
            KLINES.interval,
            base_url=binance_stream_url(environ),
            rest=BinanceKlinesClient(base_url=environ.get("BINANCE_BASE_URL")),
            max_closed=MAX_CANDLES,
        )
        rest = BinanceKlinesClient(
            base_url=environ.get("BINANCE_BASE_URL"), retry=RetryPolicy(max_attempts=1)
        )
        return cls(stream, rest)

    def start(self) -> LiveFeed:
        self.stream.start()
        if self._poller is None:
            self._poller = threading.Thread(target=self._poll_loop, name="live-rest", daemon=True)
            self._poller.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.stream.stop()
        if self._poller is not None:
            self._poller.join(timeout=5)

    def stream_live(self, health: StreamHealth, now: float | None = None) -> bool:
        age = health.message_age(now)
        return health.state == "connected" and age is not None and age < self.stale_seconds

    def forget_through(self, open_time_ms: int) -> None:
        """The warehouse has every candle up to ``open_time_ms``: stop holding them."""
        self.stream.drop_closed_through(open_time_ms)
        with self._lock:
            while self._rest_closed and self._rest_closed[0].open_time <= open_time_ms:
                self._rest_closed.popleft()

    def state(self) -> LiveState:
        snapshot = self.stream.snapshot()
        health = snapshot.health
        now = time.time()
        with self._lock:
            rest_closed = tuple(self._rest_closed)
            rest_forming, rest_at, problem = self._rest_forming, self._rest_at, self._rest_problem
            polls, backoff = self._rest_polls, self._backoff
        closed = _merged(snapshot.closed, rest_closed)[-self.max_candles :]
        if self.stream_live(health, now):
            return LiveState(
                "stream",
                snapshot.forming,
                snapshot.last_price,
                snapshot.last_event_time_ms,
                closed,
                health,
                None,
                polls,
                None,
            )
        reason = health.last_error or health.state
        notice = (
            f"The live stream is down ({reason}); the page polls Binance's REST API every"
            f" {self.poll_seconds:g} s instead."
        )
        if problem:
            notice += f" {problem}"
        fresh_rest = rest_at is not None and now - rest_at < 3 * self.poll_seconds + (backoff or 0)
        forming = rest_forming if fresh_rest else None
        return LiveState(
            "rest" if rest_at is not None else "none",
            forming,
            float(rest_forming.close) if rest_forming is not None else None,
            int(rest_at * 1000) if rest_at is not None else None,
            closed,
            health,
            notice,
            polls,
            backoff,
        )

    def poll_once(self, *, seed: bool = False) -> None:
        """One REST poll (or nothing while backing off); the poller's body. The ``seed`` poll
        at start fills the chart's last ``seed_candles`` before the stream has any."""
        if time.time() < self._backoff_until:
            return
        try:
            klines = self.rest.recent_klines(KLINES.symbol, KLINES.interval, self.seed_candles)
        except BinanceError as exc:
            with self._lock:
                if is_rate_limit(exc):
                    self._backoff = min(
                        MAX_BACKOFF_SECONDS, max(MIN_BACKOFF_SECONDS, 2 * (self._backoff or 0))
                    )
                    self._backoff_until = time.time() + self._backoff
                    self._rest_problem = (
                        "Binance answered 429 (too many requests) to the REST fallback: backing"
                        f" off {self._backoff:g} s; prices shown may be that old."
                    )
                else:
                    self._rest_problem = f"The REST fallback failed too: {exc}"
            return
        now_ms = int(time.time() * 1000)
        candles = [Candle.from_kline(kline, KLINES.symbol, KLINES.interval) for kline in klines]
        with self._lock:
            self._backoff, self._backoff_until, self._rest_problem = None, 0.0, None
            self._rest_polls += 0 if seed else 1
            self._rest_at = time.time()
            newest = self._rest_closed[-1].open_time if self._rest_closed else None
            for candle in candles:
                if candle.close_time >= now_ms:
                    self._rest_forming = _forming(candle)
                elif newest is None or candle.open_time > newest:
                    self._rest_closed.append(candle)

    def _poll_loop(self) -> None:
        self.poll_once(seed=True)
        while not self._stop.is_set():
            if self.stream_live(self.stream.health()):
                self._stop.wait(0.5)
                continue
            self.poll_once()
            self._stop.wait(self.poll_seconds)


def _forming(candle: Candle) -> Candle:
    """A REST row still open is the forming candle (``from_kline`` marks rows closed)."""
    fields = {name: getattr(candle, name) for name in Candle.__slots__}
    return Candle(**{**fields, "closed": False})


def _merged(*sources: Iterable[Candle]) -> tuple[Candle, ...]:
    by_open_time = {candle.open_time: candle for source in sources for candle in source}
    return tuple(by_open_time[key] for key in sorted(by_open_time))


def live_candles(
    closed: Iterable[Candle], forming: Candle | None, warehouse_newest: pd.Timestamp | None
) -> pd.DataFrame:
    """The candles to draw beyond the warehouse: closed ones newer than its newest candle, then
    the forming one; ``open_time`` naive UTC as in the warehouse, ``status`` says which."""
    newest_ms = None if warehouse_newest is None else _epoch_ms(warehouse_newest)
    rows = [
        (candle, NOT_IN_WAREHOUSE)
        for candle in closed
        if newest_ms is None or candle.open_time > newest_ms
    ]
    if forming is not None and (newest_ms is None or forming.open_time > newest_ms):
        rows = [row for row in rows if row[0].open_time < forming.open_time]
        rows.append((forming, FORMING))
    frame = pd.DataFrame(
        {
            "open_time": pd.to_datetime([c.open_time for c, _ in rows], unit="ms"),
            **{
                column: pd.Series([float(getattr(c, column)) for c, _ in rows], dtype="float64")
                for column in LIVE_COLUMNS
            },
            "candle_count": pd.Series([1] * len(rows), dtype="int64"),
            "status": pd.Series([status for _, status in rows], dtype="object"),
        }
    )
    return frame


def merge_live(candles: pd.DataFrame, live: pd.DataFrame, minutes: int) -> pd.DataFrame:
    """The warehouse's candles of a ``minutes`` timeframe with the live 1m candles folded in:
    a bucket the live ones extend takes their high, low, close and volumes; new buckets are
    appended. ``in_warehouse`` is False for every bucket a live candle touched."""
    merged = candles.assign(in_warehouse=True)
    if live.empty:
        return merged
    live = live.assign(bucket=live["open_time"].dt.floor(f"{minutes}min"))
    grouped = live.groupby("bucket", sort=True)
    buckets = pd.DataFrame(
        {
            "open_time": grouped["open_time"].first().index,
            "open": grouped["open"].first().to_numpy(),
            "high": grouped["high"].max().to_numpy(),
            "low": grouped["low"].min().to_numpy(),
            "close": grouped["close"].last().to_numpy(),
            "volume": grouped["volume"].sum().to_numpy(),
            "taker_base_vol": grouped["taker_base_vol"].sum().to_numpy(),
            "num_trades": grouped["num_trades"].sum().to_numpy(),
            "candle_count": grouped["candle_count"].sum().to_numpy(),
        }
    )
    buckets = buckets.assign(in_warehouse=False)
    if merged.empty:
        return buckets.reset_index(drop=True)
    last = merged.iloc[-1]
    if buckets["open_time"].iloc[0] == last["open_time"]:
        extended = buckets.iloc[0].copy()
        extended["open"] = last["open"]
        extended["high"] = max(last["high"], extended["high"])
        extended["low"] = min(last["low"], extended["low"])
        for column in ("volume", "taker_base_vol", "num_trades", "candle_count"):
            extended[column] = last[column] + extended[column]
        buckets.iloc[0] = extended
        merged = merged.iloc[:-1]
    return pd.concat([merged, buckets], ignore_index=True)


def _epoch_ms(timestamp: pd.Timestamp) -> int:
    stamp = pd.Timestamp(timestamp)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return int(stamp.value // 1_000_000)
