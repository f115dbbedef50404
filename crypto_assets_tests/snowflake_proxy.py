"""A real HTTP proxy in front of fakesnow's server that records every statement it is sent.

The Snowflake connector posts each statement as JSON (``sqlText``, gzipped) to
``/queries/v1/query-request``. The proxy keeps the statements in order, and hands fakesnow a
stand-in for the ones fakesnow cannot parse (``stand_ins``: statement -> what fakesnow runs
instead), so a session that sends them still runs on fakesnow while the test sees they were sent.
"""

import gzip
import http.client
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection"}
QUERY_PATH = "/queries/v1/query-request"


class RecordingSnowflakeProxy:
    def __init__(self, upstream_host: str, upstream_port: int, stand_ins: dict[str, str]) -> None:
        self.statements: list[str] = []
        self.stand_ins = stand_ins
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                if urlsplit(self.path).path == QUERY_PATH:
                    body = proxy._record(body, headers)
                headers["Content-Length"] = str(len(body))
                connection = http.client.HTTPConnection(upstream_host, upstream_port, timeout=30)
                connection.request(self.command, self.path, body=body, headers=headers)
                response = connection.getresponse()
                answer = response.read()
                self.send_response(response.status)
                for name, value in response.getheaders():
                    if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
                connection.close()

            do_GET = do_POST = _forward

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _record(self, body: bytes, headers: dict[str, str]) -> bytes:
        """Keeps the statement; returns the body fakesnow gets (plain JSON, stand-in applied)."""
        encoding = next((k for k in headers if k.lower() == "content-encoding"), None)
        if encoding and headers[encoding].lower() == "gzip":
            body = gzip.decompress(body)
            del headers[encoding]
        request = json.loads(body)
        self.statements.append(request["sqlText"])
        request["sqlText"] = self.stand_ins.get(request["sqlText"], request["sqlText"])
        return json.dumps(request).encode()

    def __enter__(self) -> "RecordingSnowflakeProxy":
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
