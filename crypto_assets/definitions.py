"""The one place the project is assembled; environments differ only in their resources.

Runs use the in-process executor: the lineage is a chain of I/O-bound steps, so a process per
step would add seconds of start-up to every run and parallelise nothing.
"""

import gc

import dagster as dg

from crypto_assets.analytics.definitions import ANALYTICS_ASSETS, analytics_automation_sensor
from crypto_assets.automation.alerts import failure_alerts_sensor
from crypto_assets.automation.bootstrap import bootstrap_history_sensor
from crypto_assets.automation.housekeeping import (
    prune_run_history_job,
    prune_run_history_schedule,
)
from crypto_assets.automation.jobs import kline_lineage_job
from crypto_assets.automation.schedules import daily_klines_schedule
from crypto_assets.automation.sensors import fresh_klines_sensor
from crypto_assets.klines.archive_checks import (
    archive_audit_job,
    archive_files_unchanged,
    archive_matches_rest,
)
from crypto_assets.klines.assets import clean_klines, raw_klines, snowflake_btcusdt
from crypto_assets.klines.checks import warehouse_matches_clean_klines
from crypto_assets.klines.freshness import freshness_checks, freshness_checks_sensor
from crypto_assets.resources import resources_for
from crypto_assets.settings import environment_name

defs = dg.Definitions(
    assets=[raw_klines, clean_klines, snowflake_btcusdt, *ANALYTICS_ASSETS],
    asset_checks=[
        warehouse_matches_clean_klines,
        archive_matches_rest,
        archive_files_unchanged,
        *freshness_checks,
    ],
    jobs=[kline_lineage_job, archive_audit_job, prune_run_history_job],
    schedules=[daily_klines_schedule, prune_run_history_schedule],
    sensors=[
        fresh_klines_sensor,
        failure_alerts_sensor,
        freshness_checks_sensor,
        analytics_automation_sensor,
        bootstrap_history_sensor,
    ],
    resources=resources_for(environment_name()),
    executor=dg.in_process_executor,
)

# What is loaded by now (Dagster, pandas, these definitions) lives as long as the process. Moving
# it out of the garbage collector's sight keeps each full collection during a run cheap: a
# year-long backfill allocates millions of short-lived objects, and its full collections over the
# whole heap took over a second.
gc.freeze()
