"""The first start of a local platform: load recent history by itself, once.

A fresh local home has an empty warehouse, and a new user should see a chart without learning
what a backfill is. On its first tick this sensor requests one single-run backfill of the last
``CRYPTO_ASSETS_BOOTSTRAP_DAYS`` closed days (default 30; the archive's verified daily files
where the day is old enough, REST for yesterday), then never again: its cursor remembers. Today
is the fresh-data sensor's, which the same platform start turns on.

It runs by itself only when ``crypto-assets platform`` (``make run``) starts the local stack;
in prod, and in a stack started any other way, it is off until a person turns it on.
"""

from datetime import date, datetime, timedelta, timezone

import dagster as dg

from crypto_assets.automation.jobs import LANE_TAG, kline_lineage_job
from crypto_assets.settings import KLINES, autostart, bootstrap_days

WAREHOUSE_ASSET = dg.AssetKey("snowflake_btcusdt")


def bootstrap_range(today: date, days: int, first_trading_day: str) -> tuple[str, str] | None:
    """The closed days to load, first and last (yesterday), never before the first trading day."""
    if days <= 0:
        return None
    last = today - timedelta(days=1)
    first = max(today - timedelta(days=days), date.fromisoformat(first_trading_day))
    if first > last:
        return None
    return first.isoformat(), last.isoformat()


@dg.sensor(
    job=kline_lineage_job,
    minimum_interval_seconds=30,
    default_status=(
        dg.DefaultSensorStatus.RUNNING if autostart() else dg.DefaultSensorStatus.STOPPED
    ),
    description="Once, on a fresh home: loads the last CRYPTO_ASSETS_BOOTSTRAP_DAYS closed days"
    " as one backfill run.",
)
def bootstrap_history_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    if context.cursor:
        return dg.SensorResult(skip_reason=f"History was bootstrapped: {context.cursor}.")
    if context.instance.get_latest_materialization_event(WAREHOUSE_ASSET) is not None:
        return dg.SensorResult(
            skip_reason="The warehouse was loaded before; nothing to bootstrap.",
            cursor="not needed",
        )
    today = datetime.now(timezone.utc).date()
    days = bootstrap_range(today, bootstrap_days(), KLINES.start_date)
    if days is None:
        return dg.SensorResult(skip_reason="No closed day to load.", cursor="no days")
    first, last = days
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=f"bootstrap-{first}...{last}",
                tags={
                    "dagster/asset_partition_range_start": first,
                    "dagster/asset_partition_range_end": last,
                    "crypto_assets/trigger": "bootstrap_history_sensor",
                    LANE_TAG: "batch",
                },
            )
        ],
        cursor=f"{first}...{last}",
    )
