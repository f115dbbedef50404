"""The live loader: each closed candle queryable in the warehouse seconds after its close.

The fresh-data sensor alone cannot get there: the daemon evaluates sensors at most every 5 s,
and a queued run spends 3 to 5 s starting a process that imports Dagster and this project
before its first step (README "Freshness", the breakdown). So ``crypto-assets live``, which
``crypto-assets platform`` runs beside the daemon, keeps one process with everything imported:
it follows Binance's kline stream and, as soon as a candle closes, executes the
``kline_lineage`` refresh of its day in-process against the persistent instance (the run, its
events and checks show in the UI like any other). Runs never pile up: the loader runs one
refresh at a time, and the candles that close meanwhile are all loaded by the next one (a
refresh reads the whole day from REST, so a candle the socket missed is loaded too).

The fresh-data sensor stays on as the safety net: it skips a candle whose day already had a run
requested after that candle closed, so the two never load the same minute twice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from crypto_assets.klines.frames import DAY_MS, day_key, day_start_ms
from crypto_assets.sources.binance_rest import INTERVAL_MS
from crypto_assets.sources.binance_stream import KlineStream
from crypto_assets.sources.stream_messages import Candle

if TYPE_CHECKING:
    import dagster as dg

log = logging.getLogger(__name__)

LIVE_TRIGGER = "live_loader"
RETRY_SECONDS = 2.0


@dataclass(frozen=True)
class Refresh:
    partition_key: str
    run_key: str
    newest_open_time: int


def plan_refreshes(closed: list[Candle], interval: str) -> list[Refresh]:
    """One refresh per day among ``closed`` (oldest first), keyed as the fresh-data sensor keys
    its runs: ``DAY@OPEN_TIME`` of the day's newest candle, ``DAY@final`` for its last candle."""
    step = INTERVAL_MS[interval]
    newest_by_day: dict[str, int] = {}
    for candle in closed:
        day = day_key(candle.open_time)
        newest_by_day[day] = max(candle.open_time, newest_by_day.get(day, candle.open_time))
    refreshes = []
    for day in sorted(newest_by_day):
        newest = newest_by_day[day]
        final = newest - day_start_ms(day) >= DAY_MS - step
        refreshes.append(Refresh(day, f"{day}@{'final' if final else newest}", newest))
    return refreshes


class LiveLoader:
    """Loads what ``stream`` saw close, one ``load(partition_key, run_key)`` at a time.

    ``load`` returns whether the run succeeded; a failed refresh is tried again after
    ``retry_seconds`` (with whatever closed meanwhile), so a REST outage delays, never loses.
    """

    def __init__(
        self,
        stream: KlineStream,
        load: Callable[[str, str], bool],
        *,
        retry_seconds: float = RETRY_SECONDS,
    ) -> None:
        self.stream = stream
        self.load = load
        self.retry_seconds = retry_seconds
        self.loaded_through: int | None = None

    def step(self, timeout: float = 1.0) -> int:
        """Waits up to ``timeout`` s for closed candles and loads them; returns the runs that
        succeeded."""
        after = self.loaded_through

        def has_new(snapshot) -> bool:
            return bool(snapshot.closed) and (
                after is None or snapshot.closed[-1].open_time > after
            )

        if not self.stream.wait_until(has_new, timeout):
            return 0
        succeeded = 0
        for refresh in plan_refreshes(self.stream.closed_candles(after), self.stream.interval):
            if not self.load(refresh.partition_key, refresh.run_key):
                time.sleep(self.retry_seconds)
                return succeeded
            succeeded += 1
            self.loaded_through = refresh.newest_open_time
            self.stream.drop_closed_through(refresh.newest_open_time)
        return succeeded

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.step()


def dagster_refresh(
    definitions: dg.Definitions | None = None, instance: dg.DagsterInstance | None = None
) -> Callable[[str, str], bool]:
    """A ``load`` that executes the ``kline_lineage`` job for one day in this process, recorded
    in ``instance`` (default: DAGSTER_HOME's); definitions default to the project's."""
    import socket

    import dagster as dg

    from crypto_assets.automation.jobs import LANE_TAG, kline_lineage_job
    from crypto_assets.storage.run_launcher import WORKER_HOST_TAG

    if definitions is None:
        from crypto_assets.definitions import defs as definitions
    job = definitions.resolve_job_def(kline_lineage_job.name)
    instance = instance or dg.DagsterInstance.get()

    def load(partition_key: str, run_key: str) -> bool:
        started = time.monotonic()
        result = job.execute_in_process(
            instance=instance,
            partition_key=partition_key,
            tags={
                "dagster/run_key": run_key,
                "crypto_assets/trigger": LIVE_TRIGGER,
                LANE_TAG: "live",
                WORKER_HOST_TAG: socket.gethostname(),
            },
            raise_on_error=False,
        )
        log.info(
            "live loader: %s %s in %.1f s (run %s)",
            run_key,
            "loaded" if result.success else "FAILED",
            time.monotonic() - started,
            result.run_id,
        )
        return result.success

    return load


def run_live_loader(stop: threading.Event | None = None) -> int:
    """``crypto-assets live``: the stream plus the loader until SIGTERM/SIGINT (or ``stop``)."""
    import signal

    from crypto_assets.settings import KLINES, binance_stream_url
    from crypto_assets.sources.binance_rest import BinanceKlinesClient

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    stop = stop or threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    load = dagster_refresh()
    with KlineStream(
        KLINES.symbol,
        KLINES.interval,
        base_url=binance_stream_url(),
        rest=BinanceKlinesClient(),
    ) as stream:
        log.info("live loader: following %s", stream.url)
        LiveLoader(stream, load).run(stop)
    return 0
