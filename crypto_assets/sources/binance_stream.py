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
    StreamState,
    parse_message,
    reconnect_delay,
    stream_url,
)
from crypto_assets.sources.stream_repair import fetch_owed_candles, in_daemon_thread

log = logging.getLogger(__name__)

DEFAULT_STREAM_URL = "wss://stream.binance.com:9443"
STALL_SECONDS = 30.0
MAX_CONNECTION_AGE = 23.5 * 3600  # Binance drops every connection at 24 h; leave before it does
MAX_CLOSED = 1440  # a day of 1m candles


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
        # Closed on the stream while REST repairs a gap; the oldest may go (REST refetches them).
        self._held: deque[KlineUpdate] = deque(maxlen=max_closed)
        self._gap_checked: int | None = None  # the forming candle last found past a gap
        self._changed = threading.Condition()
        self._state = StreamState(closed=deque(maxlen=max_closed))
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._main: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None  # set by stop(), on the loop
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
        """Close the socket (code 1000) and join the thread within ``timeout`` seconds; a
        connection attempt still in its handshake is cancelled."""
        self._stopping.set()
        loop, main, wake = self._loop, self._main, self._wake
        if loop is not None and main is not None and wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already finished
                loop.call_soon_threadsafe(wake.set)
            if self._thread is not None:
                self._thread.join(min(timeout, 1.0))
                if self._thread.is_alive():
                    with contextlib.suppress(RuntimeError):
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
            return self._state.health(self.url)

    def snapshot(self) -> StreamSnapshot:
        with self._changed:
            return self._state.snapshot(self.url)

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
            return self._changed.wait_for(
                lambda: predicate(self._state.snapshot(self.url)), timeout
            )

    def _update(self, **changes: object) -> None:
        with self._changed:
            for name, value in changes.items():
                setattr(self._state, name, value)
            self._changed.notify_all()

    # ----------------------------------------------------------------- the loop

    async def _run(self, started: threading.Event) -> None:
        self._loop, self._main = asyncio.get_running_loop(), asyncio.current_task()
        self._wake = asyncio.Event()
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
                except (OSError, TimeoutError, asyncio.TimeoutError, WebSocketException) as exc:
                    reason = f"{type(exc).__name__}: {exc}"
                except Exception as exc:  # a bug must not end the feed; it is logged in full
                    log.exception("kline stream %s failed", self.url)
                    reason = f"{type(exc).__name__}: {exc}"
                if self._stopping.is_set():
                    break
                failures = 0 if delivered else failures + 1
                down = failures >= self.down_after_failures or not ever_connected
                log.warning("kline stream %s: %s; reconnecting", self.url, reason)
                self._update(
                    state="down" if down else "reconnecting",
                    connected_since=None,
                    last_error=reason,
                )
                if not at_once:
                    delay = reconnect_delay(
                        max(failures - 1, 0), self.backoff_base, self.backoff_max
                    )
                    await self._wait_for_stop(delay)
        except asyncio.CancelledError:
            pass

    async def _session(self, socket: ClientConnection) -> tuple[bool, str, bool]:
        """Reads one connection until it ends; returns (delivered anything, why it ended,
        reconnect at once). The REST repair runs beside the reads, so pings keep being
        answered and the stall clock keeps running while it waits."""
        leave_at = time.monotonic() + self.max_connection_age
        repair = asyncio.create_task(self._repair()) if self._owed_from is not None else None
        assert self._wake is not None
        stopping = asyncio.ensure_future(self._wake.wait())
        receiving: asyncio.Future[str | bytes] | None = None
        delivered = False
        try:
            while True:
                # asyncio.wait, not wait_for: wait_for (3.10, 3.11) can swallow a cancellation
                # when a message arrives at the same moment.
                receiving = asyncio.ensure_future(socket.recv())
                left = leave_at - time.monotonic()
                await asyncio.wait(
                    {receiving, stopping},
                    timeout=min(self.stall_timeout, left),
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if stopping.done():
                    return delivered, "stopped", True
                if not receiving.done():
                    if time.monotonic() >= leave_at:
                        return delivered, "rotating before Binance's 24 h disconnect", True
                    return delivered, f"stalled: no message for {self.stall_timeout:g} s", False
                text = receiving.result()
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
                    if self._skipped(candle) and (repair is None or repair.done()):
                        repair = asyncio.create_task(self._repair())
                    on_hold = repair is not None and not repair.done()
                    self._receive(message, received_at, hold_closed=on_hold)
        except WebSocketException as exc:
            return delivered, f"{type(exc).__name__}: {exc}", False
        finally:
            for task in (repair, stopping, receiving):
                if task is not None and not task.done():
                    task.cancel()

    def _skipped(self, candle: Candle) -> bool:
        """Whether the stream went past a candle still owed: a close beyond it, or the first
        update of a later candle (checked once per candle, so a gap REST cannot fill either
        costs one request, not one per update)."""
        assert self._owed_from is not None
        if candle.closed:
            return candle.open_time > self._owed_from
        if candle.open_time > self._owed_from and candle.open_time != self._gap_checked:
            self._gap_checked = candle.open_time
            return True
        return False

    async def _wait_for_stop(self, seconds: float) -> None:
        """Sleeps ``seconds``, or less if stop() is called meanwhile."""
        assert self._wake is not None
        stopping = asyncio.ensure_future(self._wake.wait())
        await asyncio.wait({stopping}, timeout=seconds)
        stopping.cancel()

    def _receive(self, event: KlineEvent, received_at: float, *, hold_closed: bool) -> None:
        candle = event.candle
        with self._changed:
            last_event = self._state.last_event_time_ms
            if last_event is None or event.event_time_ms >= last_event:  # not a replayed event
                self._state.last_price = float(candle.close)
                self._state.last_event_time_ms = event.event_time_ms
            if not candle.closed:
                forming = self._state.forming
                if forming is None or candle.open_time >= forming.open_time:
                    self._state.forming = candle
            self._changed.notify_all()
        update = KlineUpdate(candle, event.event_time_ms, received_at, "stream")
        if candle.closed and hold_closed:
            self._held.append(update)
        elif candle.closed:
            self._close(candle, event.event_time_ms, received_at, "stream")
        else:
            self._deliver(update)

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
        owed_from, attempt = self._owed_from, 0
        assert owed_from is not None
        while True:
            try:
                fetched = await in_daemon_thread(
                    lambda: fetch_owed_candles(
                        self.rest, self.symbol, self.interval, owed_from, self.max_closed
                    )
                )
                break
            except Exception as exc:
                log.warning("kline stream %s: REST repair failed, %s", self.url, exc)
                self._update(last_error=f"REST repair failed: {exc}")
                await asyncio.sleep(reconnect_delay(attempt, self.backoff_base, self.backoff_max))
                attempt += 1
        held, self._held = self._held, deque(maxlen=self.max_closed)
        at = time.time()
        merged = {candle.open_time: KlineUpdate(candle, None, at, "rest") for candle in fetched}
        merged.update((update.candle.open_time, update) for update in held)  # the stream's own
        for open_time in sorted(merged):
            update = merged[open_time]
            self._close(update.candle, update.event_time_ms, update.received_at, update.source)
