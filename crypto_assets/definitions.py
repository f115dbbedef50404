"""The one place the project is assembled; environments differ only in their resources.

Runs use the in-process executor: the lineage is a chain of I/O-bound steps, so a process per
step would add seconds of start-up to every run and parallelise nothing.
"""

import dagster as dg

from crypto_assets.assets import clean_klines, raw_klines, snowflake_btcusdt
from crypto_assets.checks import ohlc_checks, warehouse_matches_clean_klines
from crypto_assets.resources import resources_for
from crypto_assets.settings import environment_name

defs = dg.Definitions(
    assets=[raw_klines, clean_klines, snowflake_btcusdt],
    asset_checks=[ohlc_checks, warehouse_matches_clean_klines],
    resources=resources_for(environment_name()),
    executor=dg.in_process_executor,
)
