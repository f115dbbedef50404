"""The daily schedule: the final run for the UTC day that just closed."""

from datetime import timedelta, timezone

import dagster as dg

from crypto_assets.automation.jobs import kline_lineage_job
from crypto_assets.settings import autostart

DAILY_CRON = "10 0 * * *"
"""00:10 UTC: Binance closes a day's last 1m candle at 23:59:59.999, with minutes to spare."""


def closed_day_key(scheduled_time) -> str:
    """The partition key of the UTC day before the tick."""
    return (scheduled_time.astimezone(timezone.utc) - timedelta(days=1)).strftime("%Y-%m-%d")


@dg.schedule(
    cron_schedule=DAILY_CRON,
    execution_timezone="UTC",
    job=kline_lineage_job,
    default_status=(
        dg.DefaultScheduleStatus.RUNNING if autostart() else dg.DefaultScheduleStatus.STOPPED
    ),
    description="Materializes the whole lineage for the UTC day that just closed.",
)
def daily_klines_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    day = closed_day_key(context.scheduled_execution_time)
    return dg.RunRequest(
        run_key=f"daily-{day}", partition_key=day, tags={"crypto_assets/trigger": "schedule"}
    )
