"""Binance's request-weight budget, its 429-then-418 bans, and faults a test injects on purpose.

Weight is counted per fixed window of ``wall_clock`` time, as ``X-MBX-USED-WEIGHT-1M`` reports it.
Over the limit Binance answers 429 with ``Retry-After``; the third request after a 429 in the same
window earns a 418 ban. Injected faults (5xx, bad bodies, dropped connections) test the retries;
``ban`` starts a real ban of a chosen length, and ``outage`` fails every request to a path for a
span of ``wall_clock`` time (a test that shares that clock with the client's sleep spends none).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable

from crypto_assets_tests.binance_standin.wire import (
    BAD_GATEWAY_HTML,
    HTML_CONTENT_TYPE,
    Answer,
    dumps,
)

FAULTS = frozenset({"429", "418", "500", "502", "503", "truncated", "malformed", "slow", "reset"})

MALFORMED_KLINES = b'[[1704067200000,"4228'

_TOO_MUCH_WEIGHT = (
    "Too much request weight used; current limit is {limit} request weight per 1 MINUTE. "
    "Please use WebSocket Streams for live updates to avoid polling the API."
)
_BANNED = (
    "Way too much request weight used; IP banned until {until}. "
    "Please use WebSocket Streams for live updates to avoid bans."
)


class Fault:
    """An injected fault still to be served ``remaining`` times, each after ``delay`` seconds."""

    __slots__ = ("delay", "kind", "remaining")

    def __init__(self, kind: str, remaining: int, delay: float) -> None:
        self.kind = kind
        self.remaining = remaining
        self.delay = delay


class Outage:
    """Every request to a path fails with ``kind`` for ``seconds`` of wall-clock time, starting
    at the request that follows ``after`` good ones."""

    __slots__ = ("after", "kind", "seconds", "starts_at")

    def __init__(self, kind: str, seconds: float, after: int) -> None:
        self.kind = kind
        self.seconds = seconds
        self.after = after
        self.starts_at: float | None = None


class WeightAndFaults:
    """Mixin for BinanceStandIn: charges request weight, refuses like Binance, serves faults."""

    wall_clock: Callable[[], float]

    def _init_limits(self, weight_limit: int, window_seconds: float, ban_seconds: float) -> None:
        if window_seconds <= 0 or ban_seconds < 0 or weight_limit < 0:
            raise ValueError("window_seconds must be > 0, ban_seconds and weight_limit >= 0")
        self.weight_limit = weight_limit
        self.window_seconds = float(window_seconds)
        self.ban_seconds = float(ban_seconds)
        self.served_429 = 0
        self.served_418 = 0
        self._lock = threading.Lock()  # weight window, ban, faults, log, counters
        self._window_index: int | None = None
        self._used = 0
        self._after_429: int | None = None  # requests since the first 429 of this window
        self._ban_until: float | None = None
        self._faults: dict[str, list[Fault]] = {}
        self._outages: dict[str, Outage] = {}

    # ----------------------------------------------------------------- test controls

    def inject(
        self, fault: str, count: int = 1, *, path: str = "/api/v3/klines", delay: float = 0
    ) -> None:
        """Make the next ``count`` requests to ``path`` fail with ``fault`` (queued in order).

        ``delay`` seconds are waited before any fault; "slow" then answers normally.
        """
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; choose from {sorted(FAULTS)}")
        if count < 1:
            raise ValueError("count must be >= 1")
        with self._lock:
            self._faults.setdefault(path, []).append(Fault(fault, count, float(delay)))

    def ban(self, retry_after: int) -> None:
        """Ban the client now, as Binance does after too many 429s: every request answers 418
        with the seconds left in ``Retry-After`` until ``retry_after`` seconds have passed."""
        with self._lock:
            self._ban_until = self.wall_clock() + retry_after

    def outage(
        self, fault: str, seconds: float, *, after: int = 0, path: str = "/api/v3/klines"
    ) -> None:
        """From the request to ``path`` after the next ``after`` good ones, answer every request
        to it with ``fault`` for ``seconds`` of ``wall_clock`` time (e.g. "500" or "reset")."""
        if fault not in FAULTS - {"slow"}:
            raise ValueError(f"unknown outage fault {fault!r}; choose from {sorted(FAULTS)}")
        with self._lock:
            self._outages[path] = Outage(fault, float(seconds), after)

    def clear_faults(self) -> None:
        """Forget faults and outages that were injected but not yet served."""
        with self._lock:
            self._faults.clear()
            self._outages.clear()

    @property
    def used_weight(self) -> int:
        """Weight used in the current window, as the next response header would count it."""
        with self._lock:
            self._roll_window(self.wall_clock())
            return self._used

    # ----------------------------------------------------------------- weight and bans

    def _roll_window(self, now: float) -> None:
        index = math.floor(now / self.window_seconds)
        if index != self._window_index:
            self._window_index = index
            self._used = 0
            self._after_429 = None

    def _charge(self, weight: int, fault_kind: str | None) -> tuple[int, Answer | None]:
        """Count ``weight``; return the weight used and Binance's refusal, if any.

        A request that will be answered by an injected fault is counted but never refused.
        """
        with self._lock:
            if fault_kind is None:
                return self._admit(weight, self.wall_clock())
            self._roll_window(self.wall_clock())
            self._used += weight
            if fault_kind == "429":
                self.served_429 += 1
            elif fault_kind == "418":
                self.served_418 += 1
            return self._used, None

    def _admit(self, weight: int, now: float) -> tuple[int, Answer | None]:
        """Charge ``weight`` and decide whether Binance would refuse the request (429/418)."""
        self._roll_window(now)
        self._used += weight
        used = self._used
        if self._ban_until is not None:
            if now < self._ban_until:
                return used, self._banned_answer(math.ceil(self._ban_until - now - 1e-9))
            self._ban_until = None
            self._after_429 = None
        if self._after_429 is not None:
            self._after_429 += 1
            if self._after_429 >= 3:
                self._ban_until = now + self.ban_seconds
                return used, self._banned_answer(math.ceil(self.ban_seconds))
        if used > self.weight_limit:
            if self._after_429 is None:
                self._after_429 = 0
            self.served_429 += 1
            assert self._window_index is not None
            window_end = (self._window_index + 1) * self.window_seconds
            retry_after = max(1, math.ceil(window_end - now - 1e-9))
            body = dumps({"code": -1003, "msg": _TOO_MUCH_WEIGHT.format(limit=self.weight_limit)})
            return used, Answer(429, body, headers=(("Retry-After", str(retry_after)),))
        return used, None

    def _banned_answer(self, retry_after: int) -> Answer:
        assert self._ban_until is not None
        self.served_418 += 1
        body = dumps({"code": -1003, "msg": _BANNED.format(until=int(self._ban_until * 1000))})
        return Answer(418, body, headers=(("Retry-After", str(max(1, retry_after))),))

    # ----------------------------------------------------------------- injected faults

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            outage = self._outages.get(path)
            if outage is not None:
                now = self.wall_clock()
                if outage.starts_at is None and outage.after > 0:
                    outage.after -= 1
                elif outage.starts_at is None or now < outage.starts_at + outage.seconds:
                    outage.starts_at = now if outage.starts_at is None else outage.starts_at
                    return Fault(outage.kind, 1, 0.0)
                else:
                    del self._outages[path]
            queue = self._faults.get(path)
            if not queue:
                return None
            fault = queue[0]
            fault.remaining -= 1
            if fault.remaining <= 0:
                queue.pop(0)
            return fault

    def _fault_answer(self, kind: str, path: str, normal: Callable[[], Answer]) -> Answer:
        """The answer for an injected fault; ``normal`` gives the body a bad body is cut from."""
        retry_after_1 = (("Retry-After", "1"),)
        if kind == "429":
            body = dumps({"code": -1003, "msg": _TOO_MUCH_WEIGHT.format(limit=self.weight_limit)})
            return Answer(429, body, headers=retry_after_1)
        if kind == "418":
            until = int((self.wall_clock() + 1) * 1000)
            body = dumps({"code": -1003, "msg": _BANNED.format(until=until)})
            return Answer(418, body, headers=retry_after_1)
        if kind == "500":
            msg = "An unknown error occurred while processing the request."
            return Answer(500, dumps({"code": -1000, "msg": msg}))
        if kind == "503":
            msg = "Internal error; unable to process your request. Please try again."
            return Answer(503, dumps({"code": -1001, "msg": msg}))
        if kind == "502":
            return Answer(502, BAD_GATEWAY_HTML, HTML_CONTENT_TYPE)
        if kind == "malformed":
            whole = normal()
            body = whole.body[: len(whole.body) // 2] if len(whole.body) > 2 else whole.body[:1]
            if path == "/api/v3/klines" and len(body) < len(MALFORMED_KLINES):
                body = MALFORMED_KLINES
            return Answer(200, body, whole.content_type)
        if kind == "truncated":
            whole = normal()
            body = whole.body[: max(1, len(whole.body) // 2)]
            return Answer(200, body, whole.content_type, declared_length=len(whole.body) + 64)
        return Answer(0, b"")  # "reset": the server drops the connection instead of answering
