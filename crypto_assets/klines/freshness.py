"""Freshness of the warehouse: snowflake_btcusdt must have been updated recently.

Dagster's last-update check fails at once on a table that was never loaded, so a fresh stack
would alert on its first tick. The sensor here waits: while the table has never been loaded,
it evaluates nothing until ``max_staleness`` has passed since it first ran, the moment the
first load was due at the latest.
"""

import json
import time
from datetime import datetime, timezone

import dagster as dg

from crypto_assets.klines.assets import snowflake_btcusdt
from crypto_assets.settings import max_staleness

FRESHNESS_SENSOR_INTERVAL_SECONDS = 300
FRESH_UNTIL = "dagster/fresh_until_timestamp"


MAX_STALENESS = max_staleness()

freshness_checks = dg.build_last_update_freshness_checks(
    assets=[snowflake_btcusdt], lower_bound_delta=MAX_STALENESS
)
FRESHNESS_CHECK_KEYS = [spec.key for check in freshness_checks for spec in check.check_specs]


def _ever_loaded(instance: dg.DagsterInstance) -> bool:
    return bool(
        instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=snowflake_btcusdt.key), limit=1
        ).records
    )


def _needs_evaluation(
    instance: dg.DagsterInstance, check_key: dg.AssetCheckKey, now: float
) -> bool:
    """As Dagster's freshness sensor decides: never run, or passed but possibly overdue now.

    A failed check is left alone: the run that loads the table evaluates it again.
    """
    history = instance.event_log_storage.get_asset_check_execution_history(check_key, limit=1)
    if not history:
        return True
    latest = history[0]
    if latest.status.value != "SUCCEEDED":
        return False
    evaluation = latest.event.dagster_event.event_specific_data if latest.event else None
    fresh_until = getattr(evaluation, "metadata", {}).get(FRESH_UNTIL)
    return fresh_until is None or fresh_until.value <= now


def _iso(epoch_seconds: float) -> str:
    return datetime.fromtimestamp(epoch_seconds, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


@dg.sensor(
    name="freshness_checks_sensor",
    minimum_interval_seconds=FRESHNESS_SENSOR_INTERVAL_SECONDS,
    asset_selection=dg.AssetSelection.checks(*freshness_checks),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Evaluates the warehouse freshness check; silent until the first load was due.",
)
def freshness_checks_sensor(context: dg.SensorEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    now = time.time()
    state = json.loads(context.cursor) if context.cursor else {"watching_since": now}
    context.update_cursor(json.dumps(state))
    if not _ever_loaded(context.instance):
        first_load_due = state["watching_since"] + MAX_STALENESS.total_seconds()
        if now < first_load_due:
            return dg.SkipReason(
                f"snowflake_btcusdt has never been loaded; its first load is due by"
                f" {_iso(first_load_due)}, and freshness is not checked before then."
            )
    due = [key for key in FRESHNESS_CHECK_KEYS if _needs_evaluation(context.instance, key, now)]
    if not due:
        return dg.SkipReason("The freshness check is running, failed, or not yet possibly overdue.")
    return dg.RunRequest(asset_check_keys=due)
