"""Bars per timeframe and their indicators, computed from the warehouse, so they run the same on
DuckDB and Snowflake.

Bars are partitioned by day like the lineage: a loaded day rebuilds its own buckets inside the
warehouse (DELETE + INSERT ... SELECT), never pulling candles into Python. Indicators read the
complete bars of the whole history (tens of thousands of rows at most) and use TA-Lib.
"""

from collections.abc import Mapping
from datetime import datetime, timedelta, timezone

import dagster as dg
import pandas as pd

from crypto_assets.analytics import bars, indicators
from crypto_assets.klines.assets import snowflake_btcusdt
from crypto_assets.klines.partitions import daily_partitions
from crypto_assets.settings import KLINES
from crypto_assets.sources.binance_rest import INTERVAL_MS
from crypto_assets.storage.warehouse import WarehouseResource

ANALYTICS_GROUP = "analytics"
TODAY_BARS_EVERY = "*/15 * * * *"
HEAVY_REBUILD_EVERY = "5 * * * *"


def _at_most_once_per(cron: str) -> dg.AutomationCondition:
    """True once a tick of ``cron`` has passed since this asset (or partition) was last asked for:
    the fresh-data sensor loads today every minute, and the analytics need not follow that fast."""
    return (
        dg.AutomationCondition.cron_tick_passed(cron, "UTC")
        .since(dg.AutomationCondition.newly_requested())
        .with_label(f"a '{cron}' tick since the last request")
    )


REFRESH = dg.AutomationCondition.eager().without(dg.AutomationCondition.in_latest_time_window()) & (
    ~dg.AutomationCondition.in_latest_time_window() | _at_most_once_per(TODAY_BARS_EVERY)
)
"""Rebuild a day's bars as soon as that day is loaded again (any day, not only today's); today's,
which the fresh-data sensor reloads every minute, at most every 15 minutes."""
UNPARTITIONED_REFRESH = (
    dg.AutomationCondition.any_deps_updated().since_last_handled()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("rebuild after the bars")
"""eager() without its "no dependency missing": these read every day of the bars, and most days
since the symbol's first trading day are never loaded."""
CLOSED_DAY_BARS_UPDATED = dg.AutomationCondition.any_deps_match(
    dg.AutomationCondition.newly_updated() & ~dg.AutomationCondition.in_latest_time_window()
).with_label("bars of a closed day just updated")
"""No since_last_handled() of its own: OR-ed with the hourly gate, a second since-condition made
Dagster 1.13's evaluator drop UNPARTITIONED_REFRESH's remembered state between ticks."""
HEAVY_REFRESH = UNPARTITIONED_REFRESH & (
    CLOSED_DAY_BARS_UPDATED | _at_most_once_per(HEAVY_REBUILD_EVERY)
)
"""The whole-history rebuilds (indicators, levels, profile, backtests): at once when a closed
day's bars change (the daily load, a backfill), and at most hourly for today's refreshes."""
HOURS_PER_YEAR = 365 * 24


def bars_table(timeframe: str) -> str:
    return f"{KLINES.table}_{timeframe}"


def indicators_table(timeframe: str) -> str:
    return f"{KLINES.table}_indicators_{timeframe}"


def replace_whole_tables(
    warehouse: WarehouseResource, tables: Mapping[str, pd.DataFrame]
) -> dict[str, dict[str, object]]:
    """Writes outputs that are replaced whole (indicators, levels, profile, backtests) through
    ``warehouse.replace_tables``, so readers never see them empty or mixed; returns each table's
    materialization metadata: its name and rows."""
    warehouse.replace_tables(tables)
    return {
        table: {
            "dagster/table_name": warehouse.qualified_table(table),
            "dagster/row_count": len(frame),
        }
        for table, frame in tables.items()
    }


def _naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


BAR_TIMEFRAMES = tuple(bars.TIMEFRAMES)


@dg.asset(
    name=f"{KLINES.table}_bars",
    deps=[snowflake_btcusdt],
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name=ANALYTICS_GROUP,
    kinds={"sql"},
    automation_condition=REFRESH,
    metadata={
        "tables": ", ".join(bars_table(timeframe) for timeframe in BAR_TIMEFRAMES),
        "dagster/column_schema": dg.TableSchema(
            columns=[dg.TableColumn(name) for name in bars.BAR_COLUMNS]
        ),
    },
    description=f"{KLINES.symbol} bars of 1h, 4h and 1d (tables {KLINES.table}_1h, _4h, _1d)"
    " resampled from the base table inside the warehouse; is_complete is false for a bucket"
    " not yet whole (e.g. today's). One asset for the three tables: Dagster records every"
    " partition of every asset, so three would triple the cost of a long range.",
)
def btcusdt_bars(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    base = warehouse.qualified_table(KLINES.table)
    window = context.partition_time_window
    start, end = _naive_utc(window.start), _naive_utc(window.end)
    newest = warehouse.query(bars.newest_open_time_sql(base))[0][0]
    if newest is None:
        raise dg.Failure(f"{base} holds no candles yet: load the kline lineage first.")
    data_end = pd.Timestamp(newest).to_pydatetime() + timedelta(
        milliseconds=INTERVAL_MS[KLINES.interval]
    )
    metadata: dict[str, object] = {"data_end": str(data_end)}
    for timeframe in BAR_TIMEFRAMES:
        target = warehouse.qualified_table(bars_table(timeframe))
        rebuild = bars.bars_rebuild(
            base, target, timeframe, warehouse.dialect, start, end, data_end
        )
        warehouse.execute([rebuild.create], rebuild.replace)
        count, complete = warehouse.query(bars.bars_written_sql(target, start, end))[0]
        metadata[f"bars_{timeframe}"] = int(count)
        metadata[f"complete_bars_{timeframe}"] = int(complete or 0)
    return dg.MaterializeResult(metadata=metadata)


def _indicators_asset(timeframe: str, periods_per_year: int) -> dg.AssetsDefinition:
    @dg.asset(
        name=indicators_table(timeframe),
        deps=[btcusdt_bars],
        group_name=ANALYTICS_GROUP,
        kinds={"pandas"},
        automation_condition=HEAVY_REFRESH,
        metadata={
            "dagster/column_schema": dg.TableSchema(
                columns=[dg.TableColumn(name) for name in indicators.INDICATOR_COLUMNS]
            ),
        },
        description=f"TA-Lib indicators on every complete {timeframe} bar of the history.",
    )
    def indicators_asset(warehouse: WarehouseResource) -> dg.MaterializeResult:
        frame = warehouse.query_frame(
            bars.complete_bars_sql(warehouse.qualified_table(bars_table(timeframe)))
        )
        table = indicators.indicators(
            frame, periods_per_year, pd.Timedelta(bars.TIMEFRAMES[timeframe])
        )
        name = indicators_table(timeframe)
        return dg.MaterializeResult(
            metadata={
                **replace_whole_tables(warehouse, {name: table})[name],
                "rows": len(table),
                f"last_{timeframe}_bars": dg.MetadataValue.md(indicators.summary_markdown(table)),
                **indicators.latest_values(table),
            },
        )

    return indicators_asset


btcusdt_indicators_1h = _indicators_asset("1h", HOURS_PER_YEAR)
btcusdt_indicators_1d = _indicators_asset("1d", 365)
