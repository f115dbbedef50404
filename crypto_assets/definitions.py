"""The one place the project is assembled; environments differ only in their resources."""

import dagster as dg

from crypto_assets.assets import clean_klines, raw_klines, snowflake_btcusdt
from crypto_assets.checks import ohlc_checks, warehouse_matches_clean_klines
from crypto_assets.resources import resources_for
from crypto_assets.settings import environment_name

defs = dg.Definitions(
    assets=[raw_klines, clean_klines, snowflake_btcusdt],
    asset_checks=[ohlc_checks, warehouse_matches_clean_klines],
    resources=resources_for(environment_name()),
)
