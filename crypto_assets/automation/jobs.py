"""The job that schedules and sensors launch: the kline lineage with the checks of new data."""

import dagster as dg

from crypto_assets.klines.archive_checks import archive_files_unchanged, archive_matches_rest
from crypto_assets.klines.assets import clean_klines, raw_klines, snowflake_btcusdt
from crypto_assets.klines.freshness import freshness_checks
from crypto_assets.klines.partitions import daily_partitions

CHECKS_WITH_THEIR_OWN_RUNS = dg.AssetSelection.checks(
    archive_matches_rest, archive_files_unchanged, *freshness_checks
)
"""The archive audit (archived days only, never today or yesterday, which the schedule and the
sensor load) and the freshness check (its own sensor): run here, they would only add steps and
events to every run of the sensor's 1,440 a day."""

LANE_TAG = "crypto_assets/lane"
"""Run-queue lane: ``live`` for the fresh-data sensor's runs, ``batch`` for the job's other runs
(history, the schedule); deploy/dagster.local.yaml lets one run of each lane go at a time, so a
backfill never holds up the minute's candle."""

kline_lineage_job = dg.define_asset_job(
    "kline_lineage",
    selection=dg.AssetSelection.assets(raw_klines, clean_klines, snowflake_btcusdt)
    - CHECKS_WITH_THEIR_OWN_RUNS,
    partitions_def=daily_partitions,
    tags={LANE_TAG: "batch"},
    description="raw_klines -> clean_klines -> snowflake_btcusdt for one day, with their checks.",
)
