"""Binance's kline websocket streams (``/ws/<stream>``, ``/stream?streams=a/b``) from the very
candles the REST endpoints serve, on their own port.

Every ``stream_tick_seconds`` of real time a connection gets what Binance would push at the
stand-in's clock (``clock_ms``): the final event (``x`` true) of each candle that closed since
the last push, in order, then the forming candle as REST shows it at that instant. So a stream
and REST agree candle for candle whatever the clock does, and a test that moves the clock by
minutes gets those minutes' candles at once. Like Binance, the server pings every
``stream_ping_seconds`` and drops a connection whose pong does not come within
``stream_pong_timeout``; the knobs below make the faults a client must survive.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import json
import re
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from crypto_assets_tests.binance_standin.data import INTERVAL_MS, Row, in_progress_view

STREAM_NAME_RE = re.compile(r"^([a-z0-9]{2,20})@kline_([0-9]+[smhdwM])$")
SERVER_SHUTDOWN_EVENT = "serverShutdown"
_T = TypeVar("_T")


@dataclass
class _Subscriber:
    """One open stream connection: its streams and, per stream, the oldest candle not yet final
    (None until the stream has a candle open)."""

    connection: ServerConnection
    streams: list[tuple[str, str, str]]  # (name, SYMBOL, interval)
    combined: bool
    log: dict[str, Any]
    next_open: dict[str, int | None] = field(default_factory=dict)
    stalled: bool = False


def kline_event(row: Row, symbol: str, interval: str, event_time: int, closed: bool) -> dict:
    """A row as Binance's kline event (``e, E, s, k{t,T,s,i,f,L,o,c,h,l,v,n,x,q,V,Q,B}``).

    Trade ids are made up from the open time (the REST row has none); -1 when nothing traded.
    """
    trades = row[8]
    traded = isinstance(trades, int) and trades > 0
    first_trade = row[0] if traded else -1
    return {
        "e": "kline",
        "E": event_time,
        "s": symbol,
        "k": {
            "t": row[0],
            "T": row[6],
            "s": symbol,
            "i": interval,
            "f": first_trade,
            "L": first_trade + trades - 1 if traded else -1,
            "o": row[1],
            "c": row[4],
            "h": row[2],
            "l": row[3],
            "v": row[5],
            "n": trades,
            "x": closed,
            "q": row[7],
            "V": row[9],
            "Q": row[10],
            "B": "0",
        },
    }


class StreamEndpoints:
    """Mixin for BinanceStandIn: the websocket server, its clock-driven pushes and its faults."""

    clock_ms: Callable[[], int]
    wall_clock: Callable[[], float]
    partial_in_progress: bool
    _rows: dict[tuple[str, str], list[Row]]
    _times: dict[tuple[str, str], list[int]]
    _data_lock: threading.Lock

    def _init_stream(
        self, tick_seconds: float, ping_seconds: float | None, pong_timeout: float, port: int
    ) -> None:
        if (
            tick_seconds <= 0
            or pong_timeout <= 0
            or (ping_seconds is not None and ping_seconds <= 0)
        ):
            raise ValueError(
                "stream_tick_seconds, stream_ping_seconds and pong timeout must be > 0"
            )
        self.stream_tick_seconds = tick_seconds
        self.stream_ping_seconds = ping_seconds
        self.stream_pong_timeout = pong_timeout
        self.stream_port = port
        self.stream_url = ""
        self.refuse_streams = False  # True: every new stream handshake is answered 503
        self.refused_streams = 0
        self.stream_connections: list[dict[str, Any]] = []  # one log entry per connection
        self._subscribers: list[_Subscriber] = []
        self._stream_loop: asyncio.AbstractEventLoop | None = None
        self._stream_thread: threading.Thread | None = None
        self._stream_stop: asyncio.Event | None = None

    # ----------------------------------------------------------------- lifecycle

    def _start_stream(self) -> None:
        ready = threading.Event()
        self._stream_thread = threading.Thread(
            target=lambda: asyncio.run(self._stream_main(ready)),
            name=f"binance-standin-stream-{self.stream_port}",
            daemon=True,
        )
        self._stream_thread.start()
        if not ready.wait(timeout=10) or not self.stream_url:
            raise RuntimeError("the stand-in's stream server did not start")

    def _stop_stream(self) -> None:
        loop, stop = self._stream_loop, self._stream_stop
        if loop is not None and stop is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop.set)
        if self._stream_thread is not None:
            self._stream_thread.join(timeout=5)
            self._stream_thread = None
        self._stream_loop = None

    async def _stream_main(self, ready: threading.Event) -> None:
        self._stream_loop = asyncio.get_running_loop()
        self._stream_stop = asyncio.Event()
        server: Server
        async with serve(
            self._stream_handler,
            "127.0.0.1",
            self.stream_port,
            process_request=self._stream_handshake,
            ping_interval=None,  # the server's own pings, which record their pongs
            close_timeout=1.0,
        ) as server:
            self.stream_port = int(next(iter(server.sockets)).getsockname()[1])
            self.stream_url = f"ws://127.0.0.1:{self.stream_port}"
            ready.set()
            await self._stream_stop.wait()

    # ----------------------------------------------------------------- test controls

    def open_streams(self) -> int:
        """How many stream connections are open now."""
        return self._on_stream_loop(self._count())

    def close_streams(self, *, abrupt: bool = False) -> int:
        """Close every open stream connection now: with a close frame (1001, going away), or
        ``abrupt``ly with no frame at all, as a dropped network would. Returns how many."""
        return self._on_stream_loop(self._close_all(abrupt))

    def stall_streams(self) -> int:
        """Stop sending anything (events and pings) on the connections open now, keeping them
        open; new connections are served normally. Returns how many were stalled."""
        return self._on_stream_loop(self._set_stalled(True))

    def resume_streams(self) -> int:
        """Undo ``stall_streams``: pushes catch up on every candle closed meanwhile."""
        return self._on_stream_loop(self._set_stalled(False))

    def send_server_shutdown(self) -> int:
        """Push Binance's ``serverShutdown`` event on every open connection."""
        event = {"e": SERVER_SHUTDOWN_EVENT, "E": int(self.clock_ms())}
        return self._on_stream_loop(self._send_all(json.dumps(event)))

    def send_stream_text(self, text: str) -> int:
        """Push ``text`` as is (e.g. a malformed message) on every open connection."""
        return self._on_stream_loop(self._send_all(text))

    def _on_stream_loop(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        if self._stream_loop is None:
            coroutine.close()
            raise RuntimeError("the stand-in is not running")
        return asyncio.run_coroutine_threadsafe(coroutine, self._stream_loop).result(timeout=10)

    async def _count(self) -> int:
        return len(self._subscribers)

    async def _close_all(self, abrupt: bool) -> int:
        subscribers = list(self._subscribers)
        for subscriber in subscribers:
            subscriber.log["closed_by_standin"] = "abrupt" if abrupt else "close"
            if abrupt:
                subscriber.connection.transport.abort()
            else:
                await subscriber.connection.close(1001, "stand-in closed the stream")
        return len(subscribers)

    async def _set_stalled(self, stalled: bool) -> int:
        for subscriber in self._subscribers:
            subscriber.stalled = stalled
            subscriber.log["stalled"] = stalled
        return len(self._subscribers)

    async def _send_all(self, text: str) -> int:
        sent = 0
        for subscriber in list(self._subscribers):
            with contextlib.suppress(ConnectionClosed):
                await subscriber.connection.send(text)
                sent += 1
        return sent

    # ----------------------------------------------------------------- connections

    def _stream_handshake(self, connection: ServerConnection, request: Request) -> Response | None:
        """Binance's 404 for an unknown path, 400 for a bad stream name; 503 while refusing."""
        if self.refuse_streams:
            self.refused_streams += 1
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "Service Unavailable\n")
        try:
            self._requested_streams(request.path)
        except LookupError:
            return connection.respond(HTTPStatus.NOT_FOUND, "Not Found\n")
        except ValueError as exc:
            return connection.respond(HTTPStatus.BAD_REQUEST, f"{exc}\n")
        return None

    @staticmethod
    def _requested_streams(path: str) -> tuple[list[tuple[str, str, str]], bool]:
        parts = urlsplit(path)
        if parts.path.startswith("/ws/"):
            names, combined = [parts.path[len("/ws/") :]], False
        elif parts.path == "/stream":
            names = [n for v in parse_qs(parts.query).get("streams", []) for n in v.split("/")]
            combined = True
        else:
            raise LookupError(path)
        streams = []
        for name in names:
            match = STREAM_NAME_RE.match(name)
            if match is None or match.group(2) not in INTERVAL_MS:
                raise ValueError(f"Invalid request: stream name {name!r}")
            streams.append((name, match.group(1).upper(), match.group(2)))
        if not streams:
            raise ValueError("Invalid request: no streams")
        return streams, combined

    async def _stream_handler(self, connection: ServerConnection) -> None:
        assert connection.request is not None
        streams, combined = self._requested_streams(connection.request.path)
        entry: dict[str, Any] = {
            "path": connection.request.path,
            "opened": self.wall_clock(),
            "closed": None,
            "pongs": 0,
            "missed_pong": False,
        }
        subscriber = _Subscriber(connection, streams, combined, entry)
        now = int(self.clock_ms())
        for name, symbol, interval in streams:  # subscribed from the candle open at connect
            subscriber.next_open[name] = self._current_open_time(symbol, interval, now)
        self.stream_connections.append(entry)
        self._subscribers.append(subscriber)
        tasks = [
            asyncio.create_task(self._push(subscriber)),
            asyncio.create_task(self._ping(subscriber)),
        ]
        try:
            async for _message in connection:  # Binance's SUBSCRIBE and the like: ignored here
                pass
        except ConnectionClosed:
            pass
        finally:
            for task in tasks:
                task.cancel()
            self._subscribers.remove(subscriber)
            entry["closed"] = self.wall_clock()
            entry["close_code"] = connection.close_code  # None: dropped without a close frame

    async def _push(self, subscriber: _Subscriber) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                if not subscriber.stalled:
                    for name, symbol, interval in subscriber.streams:
                        for event in self._due_events(subscriber, name, symbol, interval):
                            body = {"stream": name, "data": event} if subscriber.combined else event
                            await subscriber.connection.send(json.dumps(body))
                await asyncio.sleep(self.stream_tick_seconds)

    async def _ping(self, subscriber: _Subscriber) -> None:
        """Binance's keepalive: a ping every ``stream_ping_seconds``; no pong in time, no socket."""
        with contextlib.suppress(ConnectionClosed):
            while self.stream_ping_seconds is not None:
                await asyncio.sleep(self.stream_ping_seconds)
                if subscriber.stalled:
                    continue
                pong = await subscriber.connection.ping()
                try:
                    await asyncio.wait_for(pong, self.stream_pong_timeout)
                except asyncio.TimeoutError:
                    subscriber.log["missed_pong"] = True
                    await subscriber.connection.close(1008, "pong timeout")
                    return
                subscriber.log["pongs"] += 1

    def _current_open_time(self, symbol: str, interval: str, now: int) -> int | None:
        with self._data_lock:
            times = self._times.get((symbol, interval), [])
            through = bisect.bisect_right(times, now)
            return times[through - 1] if through else None

    def _due_events(
        self, subscriber: _Subscriber, name: str, symbol: str, interval: str
    ) -> list[dict]:
        """The finals of candles closed since the last push, then the forming candle, at now."""
        now = int(self.clock_ms())
        key = (symbol, interval)
        with self._data_lock:
            times = self._times.get(key, [])
            through = bisect.bisect_right(times, now)
            if through == 0:
                return []
            start = subscriber.next_open.get(name)
            first = through - 1 if start is None else bisect.bisect_left(times, start)
            if first >= through:
                return []
            due = self._rows[key][first:through]
        events = []
        for row in due:
            try:
                closed = int(row[6]) < now
            except (TypeError, ValueError):  # a deliberately corrupted row goes out as it is
                closed = True
            if closed:
                subscriber.next_open[name] = int(row[0]) + 1
            else:
                subscriber.next_open.setdefault(name, int(row[0]))
                row = in_progress_view(row, now) if self.partial_in_progress else row
            events.append(kline_event(row, symbol, interval, now, closed))
        return events
