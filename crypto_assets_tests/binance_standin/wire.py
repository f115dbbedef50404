"""What the stand-in puts on the wire: content types, canned pages, JSON and Binance error bodies.

Endpoint families answer through these shapes, so the server can frame any of them the same way.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, NamedTuple

JSON_CONTENT_TYPE = "application/json;charset=UTF-8"
HTML_CONTENT_TYPE = "text/html"
NOT_FOUND_HTML = b"<html><body><h2>404 Not found</h2></body></html>"
BAD_GATEWAY_HTML = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n"
)

Headers = list[tuple[str, str]]


class RawBody(NamedTuple):
    """An endpoint result sent as is rather than as JSON (e.g. a zip from an archive endpoint)."""

    body: bytes
    content_type: str


# An endpoint gets the query (first value of each parameter) and returns (status, JSON object),
# or (status, RawBody) for a non-JSON answer.
Endpoint = Callable[[dict[str, str]], tuple[int, Any]]


class Route(NamedTuple):
    """One path of the route table: its request weight and the endpoint answering it."""

    weight: int
    endpoint: Endpoint


class Answer(NamedTuple):
    """A complete HTTP answer; ``declared_length`` > len(body) makes a deliberately short read."""

    status: int
    body: bytes
    content_type: str = JSON_CONTENT_TYPE
    headers: tuple[tuple[str, str], ...] = ()
    declared_length: int | None = None


def dumps(obj: Any) -> bytes:
    """Compact JSON, as Binance sends it."""
    return json.dumps(obj, separators=(",", ":")).encode("utf-8")


def encode(obj: Any) -> tuple[bytes, str]:
    """Body and content type for an endpoint's result."""
    if isinstance(obj, RawBody):
        return obj.body, obj.content_type
    return dumps(obj), JSON_CONTENT_TYPE


def error(code: int, msg: str, status: int = 400) -> tuple[int, dict[str, Any]]:
    """A Binance error answer: ``{"code": -1121, "msg": "Invalid symbol."}``."""
    return status, {"code": code, "msg": msg}


def mandatory(name: str) -> tuple[int, dict[str, Any]]:
    """Binance's answer when a required parameter is missing."""
    return error(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")
