"""The job that schedules and sensors launch: the whole kline lineage with its checks."""

import dagster as dg

from crypto_assets.klines.assets import clean_klines, raw_klines, snowflake_btcusdt
from crypto_assets.klines.partitions import daily_partitions

kline_lineage_job = dg.define_asset_job(
    "kline_lineage",
    selection=dg.AssetSelection.assets(raw_klines, clean_klines, snowflake_btcusdt),
    partitions_def=daily_partitions,
    description="raw_klines -> clean_klines -> snowflake_btcusdt for one day, with their checks.",
)
