"""Binance's kline websocket stream in a background thread: the forming candle, the last price,
and every closed candle exactly once, across reconnects.

Binance pushes ``<symbol>@kline_<interval>`` a few times a minute per candle and documents how a
connection ends: a ping every 20 s that must be answered, a disconnect at 24 h, a
``serverShutdown`` event before maintenance. A page that stays open for days also meets what it
does not document: a socket that goes quiet without closing, or drops mid-minute. This client
answers pings (``websockets`` does, while the loop never blocks), reconnects with jittered
backoff, leaves before the 24 h mark, treats 30 s of silence as a dead socket, and after every
reconnect fetches the candles that closed meanwhile over REST, delivering each closed candle once
and in order (deduplicated by open time).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from crypto_assets.sources.binance_rest import INTERVAL_MS, BinanceKlinesClient
from crypto_assets.sources.stream_messages import (
    Candle,
    KlineEvent,
    KlineUpdate,
    ServerShutdown,
    StreamHealth,
    StreamMessageError,
    StreamSnapshot,
    parse_message,
    reconnect_delay,
    stream_url,
)

log = logging.getLogger(__name__)

DEFAULT_STREAM_URL = "wss://stream.binance.com:9443"
STALL_SECONDS = 30.0
MAX_CONNECTION_AGE = 23.5 * 3600  # Binance drops every connection at 24 h; leave before it does
MAX_CLOSED = 1440  # a day of 1m candles


@dataclass
class _State:
    """Mutable state behind KlineStream's lock."""

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


class KlineStream:
    """One symbol's kline stream, kept up in a daemon thread with its own asyncio loop.

    Read it from any thread with ``snapshot()``/``health()``/``closed_candles()``, or pass
    ``on_update`` to hear each candle as it comes (called on the stream's thread: keep it quick;
    an exception in it is logged, never fatal). ``backfill_from_ms`` also delivers the closed
    candles from that open time on, fetched over REST on the first connection.
    """

    def __init__(
        self,
        symbol: str = "BTCUSDT",
        interval: str = "1m",
        *,
        base_url: str | None = None,
        rest: BinanceKlinesClient | None = None,
        on_update: Callable[[KlineUpdate], None] | None = None,
        backfill_from_ms: int | None = None,
        max_closed: int = MAX_CLOSED,
        combined: bool = False,
        stall_timeout: float = STALL_SECONDS,
        max_connection_age: float = MAX_CONNECTION_AGE,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        open_timeout: float = 10.0,
        down_after_failures: int = 3,
    ) -> None:
        if max_closed < 1 or stall_timeout <= 0 or max_connection_age <= 0:
            raise ValueError("max_closed must be >= 1, stall_timeout and max_connection_age > 0")
        self.symbol, self.interval = symbol, interval
        self.base_url = (
            base_url or os.environ.get("BINANCE_STREAM_URL") or DEFAULT_STREAM_URL
        ).rstrip("/")
        self.url = stream_url(self.base_url, symbol, interval, combined=combined)
        self.rest = rest or BinanceKlinesClient()
        self.max_closed = max_closed
        self.stall_timeout = stall_timeout
        self.max_connection_age = max_connection_age
        self.backoff_base, self.backoff_max = backoff_base, backoff_max
        self.open_timeout = open_timeout
        self.down_after_failures = down_after_failures
        self._on_update = on_update
        self._step = INTERVAL_MS[interval]
        self._owed_from = backfill_from_ms  # open time of the oldest candle not yet closed here
        self._held: list[Candle] = []  # closed on the stream while a REST repair is pending
        self._changed = threading.Condition()
        self._state = _State(closed=deque(maxlen=max_closed))
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._main: asyncio.Task[None] | None = None
        self._stopping = threading.Event()

    def __repr__(self) -> str:
        return f"KlineStream({self.url!r})"

    # ----------------------------------------------------------------- the thread-side API

    def start(self) -> KlineStream:
        """Connect in the background and return at once; failures only show in ``health()``."""
        if self._thread is None:
            started = threading.Event()
            self._thread = threading.Thread(
                target=lambda: asyncio.run(self._run(started)),
                name=f"kline-stream-{self.symbol.lower()}-{self.interval}",
                daemon=True,
            )
            self._thread.start()
            started.wait(timeout=5)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Close the socket and join the thread (within ``timeout`` seconds)."""
        self._stopping.set()
        loop, main = self._loop, self._main
        if loop is not None and main is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already finished
                loop.call_soon_threadsafe(main.cancel)
        if self._thread is not None:
            self._thread.join(timeout)
        self._update(state="stopped", connected_since=None)

    def __enter__(self) -> KlineStream:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def health(self) -> StreamHealth:
        with self._changed:
            return self._health()

    def snapshot(self) -> StreamSnapshot:
        with self._changed:
            return self._snapshot()

    def closed_candles(self, after_open_time: int | None = None) -> list[Candle]:
        """Closed candles kept here, oldest first; only those opening after ``after_open_time``."""
        with self._changed:
            return [
                candle
                for candle in self._state.closed
                if after_open_time is None or candle.open_time > after_open_time
            ]

    def drop_closed_through(self, open_time: int) -> int:
        """Forget closed candles opening at or before ``open_time`` (the warehouse has them now);
        returns how many were dropped."""
        with self._changed:
            closed = self._state.closed
            dropped = 0
            while closed and closed[0].open_time <= open_time:
                closed.popleft()
                dropped += 1
            return dropped

    def wait_until(self, predicate: Callable[[StreamSnapshot], bool], timeout: float) -> bool:
        """Block until ``predicate(snapshot)`` holds (True) or ``timeout`` seconds pass (False)."""
        with self._changed:
            return self._changed.wait_for(lambda: predicate(self._snapshot()), timeout)

    def _health(self) -> StreamHealth:
        state = self._state
        return StreamHealth(
            state=state.state,
            url=self.url,
            connected_since=state.connected_since,
            last_message_at=state.last_message_at,
            reconnects=state.reconnects,
            repaired_candles=state.repaired,
            malformed_messages=state.malformed,
            last_error=state.last_error,
        )

    def _snapshot(self) -> StreamSnapshot:
        state = self._state
        return StreamSnapshot(
            forming=state.forming,
            last_price=state.last_price,
            last_event_time_ms=state.last_event_time_ms,
            closed=tuple(state.closed),
            health=self._health(),
        )

    def _update(self, **changes: object) -> None:
        with self._changed:
            for name, value in changes.items():
                setattr(self._state, name, value)
            self._changed.notify_all()

    # ----------------------------------------------------------------- the loop

    async def _run(self, started: threading.Event) -> None:
        self._loop, self._main = asyncio.get_running_loop(), asyncio.current_task()
        started.set()
        failures = 0  # consecutive connections that failed or delivered nothing
        ever_connected = False
        try:
            while not self._stopping.is_set():
                delivered, reason, at_once = False, "", False
                try:
                    async with connect(
                        self.url,
                        open_timeout=self.open_timeout,
                        ping_interval=None,  # Binance pings us every 20 s; websockets answers
                        close_timeout=1.0,
                    ) as socket:
                        if ever_connected:
                            self._update(reconnects=self._state.reconnects + 1)
                        ever_connected = True
                        self._update(state="connected", connected_since=time.time())
                        delivered, reason, at_once = await self._session(socket)
                except (OSError, TimeoutError, WebSocketException) as exc:
                    reason = f"{type(exc).__name__}: {exc}"
                except Exception as exc:  # a bug must not end the feed; it is logged in full
                    log.exception("kline stream %s failed", self.url)
                    reason = f"{type(exc).__name__}: {exc}"
                failures = 0 if delivered else failures + 1
                down = failures >= self.down_after_failures or not ever_connected
                log.warning("kline stream %s: %s; reconnecting", self.url, reason)
                self._update(
                    state="down" if down else "reconnecting",
                    connected_since=None,
                    last_error=reason,
                )
                if not at_once:
                    await asyncio.sleep(
                        reconnect_delay(max(failures - 1, 0), self.backoff_base, self.backoff_max)
                    )
        except asyncio.CancelledError:
            pass

    async def _session(self, socket: ClientConnection) -> tuple[bool, str, bool]:
        """Reads one connection until it ends; returns (delivered anything, why it ended,
        reconnect at once). The REST repair runs beside the reads, so pings keep being
        answered and the stall clock keeps running while it waits."""
        leave_at = time.monotonic() + self.max_connection_age
        repair = asyncio.create_task(self._repair()) if self._owed_from is not None else None
        delivered = False
        try:
            while True:
                left = leave_at - time.monotonic()
                try:
                    text = await asyncio.wait_for(socket.recv(), min(self.stall_timeout, left))
                except TimeoutError:
                    if time.monotonic() >= leave_at:
                        return delivered, "rotating before Binance's 24 h disconnect", True
                    return delivered, f"stalled: no message for {self.stall_timeout:g} s", False
                received_at = time.time()
                self._update(last_message_at=received_at)
                try:
                    message = parse_message(text, self.symbol, self.interval)
                except StreamMessageError as exc:
                    log.warning("kline stream %s: skipped a malformed message, %s", self.url, exc)
                    self._update(malformed=self._state.malformed + 1)
                    continue
                if isinstance(message, ServerShutdown):
                    return delivered, "serverShutdown: Binance is about to close", True
                if isinstance(message, KlineEvent):
                    delivered = True
                    candle = message.candle
                    if self._owed_from is None:
                        self._owed_from = candle.open_time
                    idle = repair is None or repair.done()
                    if idle and candle.closed and candle.open_time > self._owed_from:
                        repair = asyncio.create_task(self._repair())  # the stream skipped one
                    on_hold = repair is not None and not repair.done()
                    self._receive(message, received_at, hold_closed=on_hold)
        except WebSocketException as exc:
            return delivered, f"{type(exc).__name__}: {exc}", False
        finally:
            if repair is not None:
                repair.cancel()

    def _receive(self, event: KlineEvent, received_at: float, *, hold_closed: bool) -> None:
        candle = event.candle
        with self._changed:
            self._state.last_price = float(candle.close)
            self._state.last_event_time_ms = event.event_time_ms
            if not candle.closed:
                forming = self._state.forming
                if forming is None or candle.open_time >= forming.open_time:
                    self._state.forming = candle
            self._changed.notify_all()
        if candle.closed and hold_closed:
            self._held.append(candle)
        elif candle.closed:
            self._close(candle, event.event_time_ms, received_at, "stream")
        else:
            self._deliver(KlineUpdate(candle, event.event_time_ms, received_at, "stream"))

    def _close(self, candle: Candle, event_time_ms: int | None, at: float, source: str) -> None:
        """Keeps and delivers a closed candle unless one with its open time already was."""
        owed_from = self._owed_from
        if owed_from is not None and candle.open_time < owed_from:
            return
        if owed_from is not None and candle.open_time > owed_from:
            log.warning(
                "kline stream %s: %d candles from %d on are missing from both stream and REST",
                self.url,
                (candle.open_time - owed_from) // self._step,
                owed_from,
            )
        self._owed_from = candle.open_time + self._step
        with self._changed:
            state = self._state
            state.closed.append(candle)
            if state.forming is not None and state.forming.open_time <= candle.open_time:
                state.forming = None
            if source == "rest":
                state.repaired += 1
            self._changed.notify_all()
        self._deliver(KlineUpdate(candle, event_time_ms, at, source))

    def _deliver(self, update: KlineUpdate) -> None:
        if self._on_update is None:
            return
        try:
            self._on_update(update)
        except Exception:
            log.exception("kline stream %s: on_update failed", self.url)

    async def _repair(self) -> None:
        """Fetches the candles that closed while no socket was up, retrying until REST answers,
        then delivers them and the ones the stream closed meanwhile, in open-time order."""
        attempt = 0
        while True:
            try:
                fetched = await _in_thread(self._fetch_owed)
                break
            except Exception as exc:
                log.warning("kline stream %s: REST repair failed, %s", self.url, exc)
                self._update(last_error=f"REST repair failed: {exc}")
                await asyncio.sleep(reconnect_delay(attempt, self.backoff_base, self.backoff_max))
                attempt += 1
        held, self._held = self._held, []
        at = time.time()
        from_rest = {candle.open_time for candle in fetched}
        merged = {candle.open_time: candle for candle in (*fetched, *held)}
        for open_time in sorted(merged):
            source = "rest" if open_time in from_rest else "stream"
            self._close(merged[open_time], None, at, source)

    def _fetch_owed(self) -> list[Candle]:
        """Closed candles from the oldest owed one on (at most ``max_closed``), over REST."""
        owed_from = self._owed_from
        assert owed_from is not None
        server_now = self.rest.server_time_ms()
        start = max(owed_from, (server_now // self._step - self.max_closed) * self._step)
        if start > owed_from:
            log.warning(
                "kline stream %s: %d candles owed, keeping the newest %d",
                self.url,
                (server_now - owed_from) // self._step,
                self.max_closed,
            )
        if start >= server_now:
            return []
        klines = self.rest.get_klines(self.symbol, self.interval, start, server_now + 1)
        return [Candle.from_kline(kline, self.symbol, self.interval) for kline in klines]


async def _in_thread(function: Callable[[], list[Candle]]) -> list[Candle]:
    """``function()`` in a daemon thread, awaited without blocking the loop: a REST call that
    retries for minutes must neither stop pongs nor hold up ``stop()``."""
    loop = asyncio.get_running_loop()
    outcome: asyncio.Future[list[Candle]] = loop.create_future()

    def settle(result: list[Candle] | None, error: BaseException | None) -> None:
        if outcome.done():
            return
        if error is not None:
            outcome.set_exception(error)
        else:
            outcome.set_result(result or [])

    def work() -> None:
        try:
            result, error = function(), None
        except Exception as exc:
            result, error = None, exc
        with contextlib.suppress(RuntimeError):  # the stream stopped while REST was answering
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=work, name="kline-stream-repair", daemon=True).start()
    return await outcome
