"""The HTTP plumbing and ``BinanceStandIn``: a real server on 127.0.0.1 tying the parts together.

Each request is charged its weight (``limits``), answered by its endpoint family (``market``) or
by an injected fault, logged, and framed the way Binance frames it.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import struct
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from crypto_assets_tests.binance_standin.archive import ArchiveEndpoints
from crypto_assets_tests.binance_standin.data import Row
from crypto_assets_tests.binance_standin.limits import Fault, WeightAndFaults
from crypto_assets_tests.binance_standin.market import MarketEndpoints
from crypto_assets_tests.binance_standin.stream import StreamEndpoints
from crypto_assets_tests.binance_standin.wire import (
    HTML_CONTENT_TYPE,
    NOT_FOUND_HTML,
    Answer,
    Route,
    encode,
    error,
)


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
        # Headers and body go out as separate writes; without TCP_NODELAY a small body (an
        # archive CHECKSUM) waits for the client's delayed ACK, 40 ms a request on loopback.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
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


class BinanceStandIn(MarketEndpoints, ArchiveEndpoints, StreamEndpoints, WeightAndFaults):
    """A Binance spot REST API on 127.0.0.1 serving given klines, with Binance's limits and faults.

    Serves ``/api/v3/ping``, ``/api/v3/time``, ``/api/v3/exchangeInfo`` and ``/api/v3/klines``,
    and the same candles as the archive's daily files under ``/data/spot/daily/klines/``, and
    as the kline websocket streams on ``stream_url`` (its own port; see ``stream``).
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
        stream_tick_seconds: float = 0.25,
        stream_ping_seconds: float | None = 20.0,
        stream_pong_timeout: float = 60.0,
        stream_port: int = 0,
    ) -> None:
        self._init_limits(weight_limit, window_seconds, ban_seconds)
        self.clock_ms: Callable[[], int] = clock_ms or (lambda: int(time.time() * 1000))
        self.wall_clock: Callable[[], float] = wall_clock or time.time
        self.partial_in_progress = partial_in_progress
        self.url = ""
        self.port = port
        self.requests: list[dict[str, Any]] = []
        self._init_market(klines)
        self._init_stream(
            stream_tick_seconds, stream_ping_seconds, stream_pong_timeout, stream_port
        )
        # The route table: path -> (weight, endpoint). An endpoint family is a mixin that
        # contributes its own table here.
        self._routes: dict[str, Route] = {**self._market_routes()}
        # Prefix routes: path prefix -> endpoint(path, query), for file trees like the archive's.
        self._init_archive()
        self._prefix_routes = {**self._archive_prefix_routes()}
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
        self._start_stream()
        return self

    def stop(self) -> None:
        """Stop listening and drop open keep-alive connections, so clients cannot keep talking."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stop_stream()
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

    # ----------------------------------------------------------------- request handling

    def _serve(self, handler: _Handler) -> None:
        received = self.wall_clock()
        parts = urlsplit(handler.path)
        path = parts.path
        query = parse_qs(parts.query, keep_blank_values=True)
        params = {name: values[0] for name, values in query.items()}
        route = self._route(path)
        weight = route.weight if route is not None else 0

        fault = self._take_fault(path)
        if fault is not None and fault.delay > 0:
            time.sleep(fault.delay)
        kind = None if fault is None or fault.kind == "slow" else fault.kind
        used, refusal = self._charge(weight, kind)

        if refusal is not None:
            answer = refusal
        elif kind is None:
            answer = self._normal_answer(path, query)
        else:
            answer = self._fault_answer(kind, path, lambda: self._normal_answer(path, query))

        self._log(
            path, params, answer.status, used, received, fault, handler.headers.get("X-MBX-APIKEY")
        )
        if kind == "reset":
            self._reset(handler)
            return
        headers = [
            ("X-MBX-USED-WEIGHT", str(used)),
            ("X-MBX-USED-WEIGHT-1M", str(used)),
            *answer.headers,
        ]
        self._send(handler, answer, headers)

    def _route(self, path: str) -> Route | None:
        """The exact route for ``path``, else the first prefix route it falls under (weight 0)."""
        route = self._routes.get(path)
        if route is not None:
            return route
        for prefix, endpoint in self._prefix_routes.items():
            if path.startswith(prefix):
                return Route(0, lambda query, endpoint=endpoint: endpoint(path, query))
        return None

    def _normal_answer(self, path: str, query: dict[str, list[str]]) -> Answer:
        """What the endpoint for ``path`` answers, or Binance's 404 page for an unknown path."""
        route = self._route(path)
        if route is None:
            return Answer(404, NOT_FOUND_HTML, HTML_CONTENT_TYPE)
        duplicated = sorted(name for name, values in query.items() if len(values) > 1)
        if duplicated:
            status, obj = error(-1101, f"Duplicate values for parameter '{duplicated[0]}'.")
        else:
            status, obj = route.endpoint({name: values[0] for name, values in query.items()})
        body, content_type = encode(obj)
        return Answer(status, body, content_type)

    def _log(
        self,
        path: str,
        params: dict[str, str],
        status: int,
        used: int,
        received: float,
        fault: Fault | None,
        api_key: str | None,
    ) -> None:
        entry = {
            "path": path,
            "params": params,
            "status": status,
            "weight_used": used,
            "time": received,
            "fault": None if fault is None else fault.kind,
            "api_key": api_key,
        }
        with self._lock:
            self.requests.append(entry)

    @staticmethod
    def _send(handler: _Handler, answer: Answer, headers: list[tuple[str, str]]) -> None:
        declared = answer.declared_length
        handler.send_response(answer.status)
        handler.send_header("Content-Type", answer.content_type)
        handler.send_header(
            "Content-Length", str(len(answer.body) if declared is None else declared)
        )
        for name, value in headers:
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(answer.body)
        if declared is not None:
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
