"""Bars per timeframe and their indicators, computed from the warehouse, so they run the same on
DuckDB and Snowflake.

Bars are partitioned by day like the lineage: a loaded day rebuilds its own buckets inside the
warehouse (DELETE + INSERT ... SELECT), never pulling candles into Python. Indicators read the
complete bars of the whole history (tens of thousands of rows at most) and use TA-Lib.
"""

from datetime import datetime, timedelta, timezone

import dagster as dg
import pandas as pd

from crypto_assets.analytics import bars, indicators
from crypto_assets.klines.assets import snowflake_btcusdt
from crypto_assets.klines.partitions import daily_partitions
from crypto_assets.settings import KLINES
from crypto_assets.sources.binance_rest import INTERVAL_MS
from crypto_assets.storage.warehouse import TABLE_METADATA_KEY, WarehouseResource

ANALYTICS_GROUP = "analytics"
REFRESH = dg.AutomationCondition.eager().without(dg.AutomationCondition.in_latest_time_window())
"""Rebuild as soon as a day of the warehouse (any day, not only today's) is loaded again."""
UNPARTITIONED_REFRESH = dg.AutomationCondition.eager()
HOURS_PER_YEAR = 365 * 24


def bars_table(timeframe: str) -> str:
    return f"{KLINES.table}_{timeframe}"


def indicators_table(timeframe: str) -> str:
    return f"{KLINES.table}_indicators_{timeframe}"


def _naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


def _bars_asset(timeframe: str) -> dg.AssetsDefinition:
    @dg.asset(
        name=bars_table(timeframe),
        deps=[snowflake_btcusdt],
        partitions_def=daily_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name=ANALYTICS_GROUP,
        kinds={"sql"},
        automation_condition=REFRESH,
        metadata={
            TABLE_METADATA_KEY: bars_table(timeframe),
            "dagster/column_schema": dg.TableSchema(
                columns=[dg.TableColumn(name) for name in bars.BAR_COLUMNS]
            ),
        },
        description=f"{timeframe} bars of {KLINES.symbol} resampled from the base table in the"
        " warehouse; is_complete is false for a bucket not yet whole (e.g. today's).",
    )
    def bars_asset(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        base = warehouse.qualified_table(KLINES.table)
        target = warehouse.qualified_table(bars_table(timeframe))
        window = context.partition_time_window
        start, end = _naive_utc(window.start), _naive_utc(window.end)
        newest = warehouse.query(bars.newest_open_time_sql(base))[0][0]
        if newest is None:
            raise dg.Failure(f"{base} holds no candles yet: load the kline lineage first.")
        data_end = pd.Timestamp(newest).to_pydatetime() + timedelta(
            milliseconds=INTERVAL_MS[KLINES.interval]
        )
        rebuild = bars.bars_rebuild(
            base, target, timeframe, warehouse.dialect, start, end, data_end
        )
        warehouse.execute([rebuild.create], rebuild.replace)
        count, complete = warehouse.query(
            f"select count(*), sum(case when is_complete then 1 else 0 end) from {target}"
            f" where open_time >= '{start:%Y-%m-%d %H:%M:%S}'"
            f" and open_time < '{end:%Y-%m-%d %H:%M:%S}'"
        )[0]
        return dg.MaterializeResult(
            metadata={
                "table": target,
                "bars_written": int(count),
                "complete_bars": int(complete or 0),
                "data_end": str(data_end),
            }
        )

    return bars_asset


btcusdt_1h, btcusdt_4h, btcusdt_1d = (_bars_asset(timeframe) for timeframe in ("1h", "4h", "1d"))
BARS_ASSETS = {"1h": btcusdt_1h, "4h": btcusdt_4h, "1d": btcusdt_1d}


def _indicators_asset(timeframe: str, periods_per_year: int) -> dg.AssetsDefinition:
    @dg.asset(
        name=indicators_table(timeframe),
        deps=[BARS_ASSETS[timeframe]],
        io_manager_key="warehouse_io_manager",
        group_name=ANALYTICS_GROUP,
        kinds={"pandas"},
        automation_condition=UNPARTITIONED_REFRESH,
        metadata={
            TABLE_METADATA_KEY: indicators_table(timeframe),
            "dagster/column_schema": dg.TableSchema(
                columns=[dg.TableColumn(name) for name in indicators.INDICATOR_COLUMNS]
            ),
        },
        description=f"TA-Lib indicators on every complete {timeframe} bar of the history.",
    )
    def indicators_asset(warehouse: WarehouseResource) -> dg.Output[pd.DataFrame]:
        frame = warehouse.query_frame(
            bars.complete_bars_sql(warehouse.qualified_table(bars_table(timeframe)))
        )
        table = indicators.indicators(frame, periods_per_year)
        return dg.Output(
            table,
            metadata={
                "rows": len(table),
                f"last_{timeframe}_bars": dg.MetadataValue.md(indicators.summary_markdown(table)),
                **indicators.latest_values(table),
            },
        )

    return indicators_asset


btcusdt_indicators_1h = _indicators_asset("1h", HOURS_PER_YEAR)
btcusdt_indicators_1d = _indicators_asset("1d", 365)
