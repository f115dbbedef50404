"""The stream client's REST repair: the closed candles a websocket missed while it was down.

Kept apart from the websocket loop because it is plain blocking HTTP (the REST client, with its
pacing and retries) that the loop must await without ever blocking on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable

from crypto_assets.sources.binance_rest import INTERVAL_MS, BinanceKlinesClient
from crypto_assets.sources.stream_messages import Candle

log = logging.getLogger(__name__)


def fetch_owed_candles(
    rest: BinanceKlinesClient, symbol: str, interval: str, owed_from: int, max_closed: int
) -> list[Candle]:
    """Closed candles opening at ``owed_from`` or later, at most the newest ``max_closed``."""
    step = INTERVAL_MS[interval]
    server_now = rest.server_time_ms()
    start = max(owed_from, (server_now // step - max_closed) * step)
    if start > owed_from:
        log.warning(
            "%s %s: %d candles owed since a long outage, fetching the newest %d",
            symbol,
            interval,
            (server_now - owed_from) // step,
            max_closed,
        )
    if start >= server_now:
        return []
    klines = rest.get_klines(symbol, interval, start, server_now + 1)
    return [Candle.from_kline(kline, symbol, interval) for kline in klines]


async def in_daemon_thread(function: Callable[[], list[Candle]]) -> list[Candle]:
    """``function()`` in a daemon thread, awaited without blocking the loop: a REST call that
    retries for minutes must neither stop pongs nor hold up ``KlineStream.stop()`` (a thread of
    the loop's default executor would be joined when the loop closes)."""
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
