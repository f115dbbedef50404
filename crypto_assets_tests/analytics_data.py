"""Test helpers for the analytics: a warehouse base table filled through the real transform, and
analytics runs over it with the local resources."""

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pandas as pd

from crypto_assets.analytics.definitions import ANALYTICS_ASSETS
from crypto_assets.klines.transform import clean_frame, raw_frame, warehouse_frame
from crypto_assets_tests.lineage import LINEAGE


def warehouse_candles(rows: list[list], interval: str, symbol: str = "BTCUSDT") -> pd.DataFrame:
    """Kline rows as Binance sends them -> the warehouse rows the lineage would load."""
    raw = raw_frame(rows, symbol, interval, datetime(2024, 1, 1, tzinfo=timezone.utc))
    return warehouse_frame(clean_frame(raw))


def load_base_table(home: Path, rows: list[list], interval: str) -> pd.DataFrame:
    """Writes the candles as cryptodb.cryptoschema.btcusdt in home's DuckDB file."""
    frame = warehouse_candles(rows, interval)
    with duckdb.connect(str(home / "cryptodb.duckdb")) as connection:
        connection.execute("create schema if not exists cryptoschema")
        connection.register("candles", frame)
        connection.execute("create or replace table cryptoschema.btcusdt as select * from candles")
    return frame


def materialize_analytics(
    resources: dict[str, Any],
    first_day: str,
    last_day: str,
    instance: dg.DagsterInstance | None = None,
    run_config: dict | None = None,
    assets: list[dg.AssetsDefinition] = ANALYTICS_ASSETS,
) -> dg.ExecuteInProcessResult:
    """The analytics assets (default: every one) over the days [first_day, last_day], in one
    run."""
    job = dg.Definitions(
        assets=[*LINEAGE, *ANALYTICS_ASSETS], resources=resources
    ).resolve_implicit_global_asset_job_def()
    return job.execute_in_process(
        instance=instance,
        asset_selection=[key for asset in assets for key in asset.keys],
        tags={
            "dagster/asset_partition_range_start": first_day,
            "dagster/asset_partition_range_end": last_day,
        },
        run_config=run_config,
        raise_on_error=True,
    )


def read_table(home: Path, table: str) -> pd.DataFrame:
    with duckdb.connect(str(home / "cryptodb.duckdb"), read_only=True) as connection:
        return connection.execute(f"select * from cryptodb.cryptoschema.{table}").fetchdf()
