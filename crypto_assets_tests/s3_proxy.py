"""A real HTTP proxy in front of moto's S3 server that starts refusing writes to one bucket.

moto accepts every write; S3 in the wild refuses some (a policy changed, a bucket emptied of
permissions half way through a backfill). The proxy forwards every request untouched until
``allowed_puts`` objects have been written to ``bucket``, then answers further PUTs to it with
S3's 403 AccessDenied.
"""

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

ACCESS_DENIED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    b"<Message>Access Denied</Message><RequestId>proxy</RequestId></Error>"
)
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection"}


class RefusingS3Proxy:
    def __init__(self, upstream_url: str, bucket: str, allowed_puts: int) -> None:
        self.bucket = bucket
        self.allowed_puts = allowed_puts
        self.written: list[str] = []
        self.refused: list[str] = []
        upstream = urlsplit(upstream_url)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0], 16)
                        chunk = self.rfile.read(size)
                        self.rfile.readline()
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return b"".join(chunks)
                        chunks.append(chunk)
                return self.rfile.read(int(self.headers.get("Content-Length", 0)))

            def _forward(self) -> None:
                body = self._body()
                path = unquote(urlsplit(self.path).path)
                is_object_put = (
                    self.command == "PUT"
                    and path.startswith(f"/{proxy.bucket}/")
                    and "uploadId" not in self.path
                )
                if is_object_put and len(proxy.written) >= proxy.allowed_puts:
                    proxy.refused.append(path)
                    self._answer(403, ACCESS_DENIED, [("Content-Type", "application/xml")])
                    return
                connection = http.client.HTTPConnection(
                    upstream.hostname, upstream.port, timeout=30
                )
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                headers["Content-Length"] = str(len(body))
                connection.request(self.command, self.path, body=body, headers=headers)
                response = connection.getresponse()
                answer = response.read()
                if is_object_put and response.status == 200:
                    proxy.written.append(path)
                self._answer(
                    response.status,
                    answer,
                    [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP],
                )
                connection.close()

            def _answer(self, status: int, body: bytes, headers: list[tuple[str, str]]) -> None:
                self.send_response(status)
                for name, value in headers:
                    if name.lower() != "content-length":
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> "RefusingS3Proxy":
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
