"""Analytics assets: computed from the warehouse, so they run the same on DuckDB and Snowflake."""

import dagster as dg
import pandas as pd

from crypto_assets.analytics import indicators
from crypto_assets.analytics.indicators import INDICATOR_COLUMNS, daily_bars_sql, summary_markdown
from crypto_assets.klines.assets import snowflake_btcusdt
from crypto_assets.settings import KLINES
from crypto_assets.storage.warehouse import TABLE_METADATA_KEY, WarehouseResource

ANALYTICS_GROUP = "analytics"
INDICATOR_HISTORY_DAYS = 400
"""Enough daily bars for a year of indicators with their 30-day windows filled."""


@dg.asset(
    deps=[snowflake_btcusdt],
    io_manager_key="warehouse_io_manager",
    group_name=ANALYTICS_GROUP,
    kinds={"pandas"},
    metadata={
        TABLE_METADATA_KEY: f"{KLINES.table}_daily_indicators",
        "dagster/column_schema": dg.TableSchema(
            columns=[dg.TableColumn(name) for name in INDICATOR_COLUMNS]
        ),
    },
    automation_condition=dg.AutomationCondition.on_cron("20 0 * * *", "UTC"),
)
def daily_indicators(warehouse: WarehouseResource) -> dg.Output[pd.DataFrame]:
    """Daily bars of the last 400 days with returns, SMA/EMA, MACD, RSI and volatility."""
    bars = warehouse.query_frame(
        daily_bars_sql(warehouse.qualified_table(KLINES.table), INDICATOR_HISTORY_DAYS)
    )
    frame = indicators.daily_indicators(bars)
    latest = frame.iloc[-1] if len(frame) else None
    return dg.Output(
        frame,
        metadata={
            "last_14_days": dg.MetadataValue.md(summary_markdown(frame)),
            **{
                name: float(latest[name])
                for name in ("close", "sma_30", "rsi_14", "volatility_30d")
                if latest is not None and pd.notna(latest[name])
            },
        },
    )
