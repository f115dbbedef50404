"""How the Binance client spends its request budget: per-minute weight pacing and retry policy.

Kept apart from the REST client so the archive client can share one policy and one pacer.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try before giving up on one request."""

    max_attempts: int = 6
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    max_retry_after: float = 300.0

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter, so many clients do not retry in lockstep."""
        return random.uniform(0, min(self.backoff_max, self.backoff_base * 2**attempt))


class WeightPacer:
    """Keeps a client under Binance's per-minute request-weight budget by waiting, not by 429s.

    Binance counts weight in fixed windows and reports the window's total in
    ``X-MBX-USED-WEIGHT-1M`` on every answer; when the next request would cross the budget
    (less a safety margin for other clients on the same IP), wait for the window to roll over.
    """

    def __init__(
        self,
        budget: int = 6000,
        window_seconds: float = 60.0,
        safety_margin: float = 0.1,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.limit = int(budget * (1 - safety_margin))
        self.window_seconds = window_seconds
        self._clock = clock
        self._sleep = sleep
        self._used = 0
        self._window = self._current_window()

    def _current_window(self) -> int:
        return int(self._clock() // self.window_seconds)

    def before_request(self, weight: int) -> None:
        if self._current_window() != self._window:
            self._used, self._window = 0, self._current_window()
        if self._used + weight > self.limit:
            wait = (self._window + 1) * self.window_seconds - self._clock()
            log.info("Binance weight %s/%s used; pausing %.1fs", self._used, self.limit, wait)
            self._sleep(max(wait, 0.0))
            self._used, self._window = 0, self._current_window()
        self._used += weight

    def observe(self, used_weight: str | None) -> None:
        """Trust the server's count over ours: other clients on the same IP spend weight too."""
        if used_weight is not None and used_weight.isdigit():
            self._window = self._current_window()
            self._used = int(used_weight)
