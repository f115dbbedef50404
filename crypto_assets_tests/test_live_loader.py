"""The live loader: closed candles from the stream into the warehouse, one refresh at a time.

The end-to-end test runs the real loader (the real KlineStream and in-process kline_lineage runs
recorded in a local instance) against the stand-in's stream and REST API on a clock twenty times
faster than real time, a simulated minute every 3 s.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import dagster as dg
import pytest

from crypto_assets.automation.jobs import kline_lineage_job
from crypto_assets.automation.live_loader import (
    LiveLoader,
    Refresh,
    dagster_refresh,
    plan_refreshes,
)
from crypto_assets.klines.archive_checks import archive_files_unchanged, archive_matches_rest
from crypto_assets.klines.assets import clean_klines, raw_klines, snowflake_btcusdt
from crypto_assets.klines.checks import warehouse_matches_clean_klines
from crypto_assets.klines.freshness import freshness_checks
from crypto_assets.resources import local_resources
from crypto_assets.sources.binance_rest import BinanceKlinesClient
from crypto_assets.sources.binance_stream import KlineStream
from crypto_assets.sources.stream_messages import Candle
from crypto_assets_tests.binance_standin import BinanceStandIn, synthetic_klines
from crypto_assets_tests.conftest import utc_ms
from crypto_assets_tests.lineage import warehouse_open_times

MINUTE = 60_000


def candle(open_time: int) -> Candle:
    return Candle(
        "BTCUSDT", "1m", open_time, "1", "2", "0.5", "1.5", "3", open_time + MINUTE - 1,
        "4.5", 7, "1", "1.5", True,
    )  # fmt: skip


def test_refreshes_name_each_day_and_its_newest_candle_like_the_sensor() -> None:
    day = utc_ms("2026-12-05")
    closed = [candle(day - MINUTE), candle(day), candle(day + MINUTE)]
    assert plan_refreshes(closed, "1m") == [
        Refresh("2026-12-04", "2026-12-04@final", day - MINUTE),
        Refresh("2026-12-05", f"2026-12-05@{day + MINUTE}", day + MINUTE),
    ]
    assert plan_refreshes([candle(day + 5 * MINUTE)], "1m") == [
        Refresh("2026-12-05", f"2026-12-05@{day + 5 * MINUTE}", day + 5 * MINUTE)
    ]
    assert plan_refreshes([], "1m") == []


@pytest.mark.faults
def test_socket_closed_mid_minute_loses_and_repeats_no_candle(
    tmp_path: Path, local_instance: dg.DagsterInstance
) -> None:
    day = utc_ms("2026-11-20")
    start_sim, start_real, speed = day + 12 * 60 * MINUTE - 20_000, time.time(), 20.0

    def clock() -> int:
        return int(start_sim + (time.time() - start_real) * 1000 * speed)

    klines = {("BTCUSDT", "1m"): synthetic_klines("1m", day, day + 86_400_000)}
    home = tmp_path / "data"
    with BinanceStandIn(klines, clock_ms=clock, stream_tick_seconds=0.1) as standin:
        environ = {"BINANCE_BASE_URL": standin.url, "CRYPTO_ASSETS_HOME": str(home)}
        definitions = dg.Definitions(
            assets=[raw_klines, clean_klines, snowflake_btcusdt],
            asset_checks=[
                warehouse_matches_clean_klines,
                archive_matches_rest,
                archive_files_unchanged,
                *freshness_checks,
            ],
            jobs=[kline_lineage_job],
            resources=local_resources(environ),
        )
        loads: list[str] = []
        refresh = dagster_refresh(definitions, local_instance)

        def load(partition_key: str, run_key: str) -> bool:
            loads.append(run_key)
            return refresh(partition_key, run_key)

        stream = KlineStream(
            base_url=standin.stream_url,
            rest=BinanceKlinesClient(base_url=standin.url),
            backoff_base=0.2,
            backoff_max=0.5,
        )
        stop = threading.Event()
        with stream:
            loader = LiveLoader(stream, load, retry_seconds=0.2)
            worker = threading.Thread(target=loader.run, args=(stop,), daemon=True)
            worker.start()
            try:
                wait_for(lambda: loader.loaded_through is not None, 60, "a first load")
                first_loaded = loader.loaded_through
                # Mid-minute: the socket drops with no close frame, and the stand-in refuses
                # new connections while two simulated minutes close.
                wait_for(lambda: (clock() % MINUTE) > 20_000, 10, "mid-minute")
                standin.refuse_streams = True
                assert standin.close_streams(abrupt=True) == 1
                refused_at = clock()
                wait_for(lambda: clock() - refused_at > 2 * MINUTE + 5_000, 30, "two closes")
                standin.refuse_streams = False
                target = (clock() // MINUTE - 1) * MINUTE  # the newest candle closed by now
                wait_for(
                    lambda: (loader.loaded_through or 0) >= target, 60, f"a load through {target}"
                )
            finally:
                stop.set()
                worker.join(timeout=30)
        newest = loader.loaded_through
        assert stream.health().reconnects >= 1
        assert stream.health().repaired_candles >= 2
    open_times = warehouse_open_times(home / "cryptodb.duckdb")
    assert open_times == list(range(day, newest + MINUTE, MINUTE))
    assert newest >= first_loaded + 3 * MINUTE
    runs = local_instance.get_run_records(
        dg.RunsFilter(tags={"crypto_assets/trigger": "live_loader"})
    )
    assert len(runs) == len(loads)
    assert {record.dagster_run.status for record in runs} == {dg.DagsterRunStatus.SUCCESS}
    assert {record.dagster_run.tags["crypto_assets/lane"] for record in runs} == {"live"}


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_fresh_sensor_skips_a_candle_the_loader_already_requested(
    local_instance: dg.DagsterInstance,
) -> None:
    """A run of the day created after the candle closed read it: the sensor requests no other."""
    from crypto_assets.automation.sensors import fresh_klines_sensor
    from crypto_assets.klines.resources import BinanceResource

    day = utc_ms("2024-01-02")
    now = day + 10 * 60 * MINUTE
    klines = {("BTCUSDT", "1m"): synthetic_klines("1m", day, day + 86_400_000)}
    with BinanceStandIn(klines, clock_ms=lambda: now) as standin:

        def tick() -> dg.SensorResult | dg.SkipReason:
            context = dg.build_sensor_context(
                instance=local_instance,
                resources={"binance": BinanceResource(base_url=standin.url)},
            )
            return fresh_klines_sensor(context)

        assert [r.run_key for r in tick().run_requests] == [f"2024-01-02@{now - MINUTE}"]
        local_instance.add_run(
            dg.DagsterRun(
                job_name=kline_lineage_job.name,
                run_id="0a1b2c3d-0000-4000-8000-000000000001",
                status=dg.DagsterRunStatus.SUCCESS,
                tags={"dagster/partition": "2024-01-02", "crypto_assets/trigger": "live_loader"},
            )
        )
        skipped = tick()
    assert isinstance(skipped, dg.SkipReason)
    assert skipped.skip_message == (
        f"A run for 2024-01-02 is in flight or started after the candle of {now - MINUTE}"
        " closed (the live loader's)."
    )
