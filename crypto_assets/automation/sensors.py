"""The fresh-data sensor: a run as soon as Binance has closed candles the warehouse lacks.

Each tick costs three weight units (/api/v3/time and a two-candle klines call). The cursor holds
the newest closed candle already requested; run keys name the day and that candle, so two ticks
never launch the same work.
"""

import json
from dataclasses import dataclass
from datetime import datetime, timezone

import dagster as dg

from crypto_assets.automation.jobs import LANE_TAG, kline_lineage_job
from crypto_assets.klines.frames import DAY_MS, day_key, day_keys_between, day_start_ms
from crypto_assets.klines.resources import BinanceResource
from crypto_assets.settings import KLINES, autostart, env_int
from crypto_assets.sources.binance_rest import INTERVAL_MS, BinanceError
from crypto_assets.sources.pacing import RetryPolicy

SENSOR_INTERVAL_SECONDS = env_int(
    "CRYPTO_ASSETS_SENSOR_INTERVAL_SECONDS", 60, minimum=1, maximum=86_400
)
MAX_CATCH_UP_DAYS = 7
IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]
READ_THE_DAY = [*IN_FLIGHT, dg.DagsterRunStatus.SUCCESS]
"""A run in these states has read, or will read, every candle closed before it was created. A
failed or canceled one loaded nothing, so it must never stand in for the next refresh: a run
that died after a candle closed would otherwise leave that candle unloaded, and with it the
data stale."""


@dataclass(frozen=True)
class FreshRun:
    partition_key: str
    run_key: str
    final: bool


def plan_fresh_runs(
    last_requested_ms: int | None, latest_closed_ms: int, interval: str
) -> list[FreshRun]:
    """Runs that bring the warehouse up to ``latest_closed_ms``.

    The latest candle's day gets a refresh run; every earlier day since the cursor whose last
    candle was not yet requested gets its final run (at most ``MAX_CATCH_UP_DAYS``; older
    gaps are a backfill's job).
    """
    if last_requested_ms is not None and latest_closed_ms <= last_requested_ms:
        return []
    latest_day = day_key(latest_closed_ms)
    last_of_day = DAY_MS - INTERVAL_MS[interval]
    runs = []
    if last_requested_ms is not None:
        first_open_day = day_key(last_requested_ms)
        if last_requested_ms - day_start_ms(first_open_day) >= last_of_day:
            first_open_day = day_key(last_requested_ms + DAY_MS)
        closed_days = [
            day for day in day_keys_between(first_open_day, latest_day) if day < latest_day
        ]
        runs += [FreshRun(day, f"{day}@final", True) for day in closed_days[-MAX_CATCH_UP_DAYS:]]
    is_final = latest_closed_ms - day_start_ms(latest_day) >= last_of_day
    suffix = "final" if is_final else f"{latest_closed_ms}"
    runs.append(FreshRun(latest_day, f"{latest_day}@{suffix}", is_final))
    return runs


def _cursor_ms(cursor: str | None) -> int | None:
    return json.loads(cursor)["latest_closed_open_time"] if cursor else None


def _in_flight(instance: dg.DagsterInstance, partition_key: str) -> bool:
    return bool(
        instance.get_run_ids(
            dg.RunsFilter(
                job_name=kline_lineage_job.name,
                statuses=IN_FLIGHT,
                tags={"dagster/partition": partition_key},
            ),
            limit=1,
        )
    )


def _requested_since(instance: dg.DagsterInstance, partition_key: str, since_ms: int) -> bool:
    """A run of the day created after ``since_ms`` that did not fail: it read every candle closed
    by then."""
    return bool(
        instance.get_run_ids(
            dg.RunsFilter(
                job_name=kline_lineage_job.name,
                statuses=READ_THE_DAY,
                tags={"dagster/partition": partition_key},
                created_after=datetime.fromtimestamp(since_ms / 1000, timezone.utc),
            ),
            limit=1,
        )
    )


@dg.sensor(
    job=kline_lineage_job,
    minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
    default_status=(
        dg.DefaultSensorStatus.RUNNING if autostart() else dg.DefaultSensorStatus.STOPPED
    ),
    description="Refreshes today's partition when Binance has new closed candles.",
)
def fresh_klines_sensor(
    context: dg.SensorEvaluationContext, binance: BinanceResource
) -> dg.SensorResult | dg.SkipReason:
    try:
        latest = binance.get_client(retry=RetryPolicy(max_attempts=1)).latest_closed_open_time(
            KLINES.symbol, KLINES.interval
        )
    except (BinanceError, OSError) as exc:
        context.log.warning(f"Binance did not answer this tick: {exc}")
        return dg.SkipReason(f"Binance did not answer: {exc}")
    if latest is None:
        return dg.SkipReason("Binance has no closed candle yet.")
    runs = plan_fresh_runs(_cursor_ms(context.cursor), latest, KLINES.interval)
    if not runs:
        return dg.SkipReason(f"No closed candle newer than {_cursor_ms(context.cursor)}.")
    refresh = runs[-1]
    close_ms = latest + INTERVAL_MS[KLINES.interval]
    if not refresh.final and (
        _in_flight(context.instance, refresh.partition_key)
        or _requested_since(context.instance, refresh.partition_key, close_ms)
    ):
        runs = runs[:-1]
        if not runs:
            return dg.SkipReason(
                f"A run for {refresh.partition_key} is in flight or started after the candle"
                f" of {latest} closed (the live loader's)."
            )
        latest = day_start_ms(refresh.partition_key) - INTERVAL_MS[KLINES.interval]
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=run.run_key,
                partition_key=run.partition_key,
                tags={"crypto_assets/trigger": "fresh_klines_sensor", LANE_TAG: "live"},
            )
            for run in runs
        ],
        cursor=json.dumps({"latest_closed_open_time": latest}),
    )
