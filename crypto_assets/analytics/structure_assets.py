"""Market structure and the market charts: support/resistance levels, the volume profile, and
candlestick PNGs attached to their materialization and written to the artifacts zone."""

import base64
from dataclasses import dataclass
from datetime import timedelta

import dagster as dg
import pandas as pd

from crypto_assets.analytics import bars, structure
from crypto_assets.analytics.assets import (
    ANALYTICS_GROUP,
    HEAVY_REFRESH,
    UNPARTITIONED_REFRESH,
    bars_table,
    btcusdt_bars,
    btcusdt_indicators_1d,
    btcusdt_indicators_1h,
    indicators_table,
    replace_whole_tables,
)
from crypto_assets.settings import KLINES
from crypto_assets.storage.artifacts import ArtifactsWriter
from crypto_assets.storage.warehouse import WarehouseResource


@dataclass(frozen=True)
class LevelRule:
    """How one timeframe's levels are found: ``window`` bars on each side of a swing, swings of
    the last ``lookback_days`` only, each weighing half as much every ``half_life_days``."""

    window: int
    lookback_days: int
    half_life_days: int

    def bars_per_day(self, timeframe: str) -> int:
        return timedelta(days=1) // bars.TIMEFRAMES[timeframe]


LEVEL_RULES = {
    "1d": LevelRule(window=3, lookback_days=365, half_life_days=90),
    "4h": LevelRule(window=5, lookback_days=90, half_life_days=30),
}
PROFILE_DAYS = 90
CHART_DAILY_BARS = 180
CHART_HOURLY_DAYS = 7


def png_markdown(png: bytes, alt: str) -> dg.MetadataValue:
    """A PNG inline in the Dagster UI: Markdown metadata with a data URI."""
    return dg.MetadataValue.md(f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})")


def _table_schema(columns: tuple[str, ...]) -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(name) for name in columns])


@dg.asset(
    name=f"{KLINES.table}_levels",
    deps=[btcusdt_bars],
    group_name=ANALYTICS_GROUP,
    kinds={"pandas"},
    automation_condition=HEAVY_REFRESH,
    metadata={
        "dagster/column_schema": _table_schema(structure.LEVEL_COLUMNS),
    },
    description="Support and resistance from clustered, recency-weighted swing highs/lows of the"
    " last year of 1d bars and the last 90 days of 4h bars: the 3 strongest on each side of"
    " the price, per timeframe.",
)
def btcusdt_levels(warehouse: WarehouseResource) -> dg.MaterializeResult:
    found = [
        structure.levels(
            warehouse.query_frame(
                bars.complete_bars_sql(
                    warehouse.qualified_table(bars_table(timeframe)), rule.lookback_days
                )
            ),
            timeframe,
            window=rule.window,
            lookback=rule.lookback_days * rule.bars_per_day(timeframe),
            half_life=rule.half_life_days * rule.bars_per_day(timeframe),
        )
        for timeframe, rule in LEVEL_RULES.items()
    ]
    found = [frame for frame in found if not frame.empty]
    table = (
        pd.concat(found, ignore_index=True).sort_values(["timeframe", "price"])
        if found
        else pd.DataFrame(columns=list(structure.LEVEL_COLUMNS))
    )
    nearest = table.loc[table["distance_pct"].abs().idxmin()] if len(table) else None
    name = f"{KLINES.table}_levels"
    return dg.MaterializeResult(
        metadata={
            **replace_whole_tables(warehouse, {name: table.reset_index(drop=True)})[name],
            "levels": len(table),
            **(
                {
                    "nearest_level": float(nearest["price"]),
                    "nearest_distance_pct": float(nearest["distance_pct"]),
                }
                if nearest is not None
                else {}
            ),
        },
    )


@dg.asset(
    name=f"{KLINES.table}_volume_profile",
    deps=[btcusdt_bars],
    group_name=ANALYTICS_GROUP,
    kinds={"pandas"},
    automation_condition=HEAVY_REFRESH,
    metadata={
        "dagster/column_schema": _table_schema(structure.PROFILE_COLUMNS),
    },
    description=f"Volume by price over the last {PROFILE_DAYS} days of 1h bars (each bar's volume"
    " spread over its high-low range), with taker"
    " buy/sell volume, the point of control and the 70% value area.",
)
def btcusdt_volume_profile(warehouse: WarehouseResource) -> dg.MaterializeResult:
    hourly = warehouse.query_frame(
        bars.complete_bars_sql(warehouse.qualified_table(bars_table("1h")), PROFILE_DAYS)
    )
    profile = structure.volume_profile(hourly, pd.Timedelta(bars.TIMEFRAMES["1h"]))
    poc = profile[profile["is_poc"]]
    area = profile[profile["in_value_area"]]
    name = f"{KLINES.table}_volume_profile"
    return dg.MaterializeResult(
        metadata={
            **replace_whole_tables(warehouse, {name: profile})[name],
            "bins": len(profile),
            **(
                {
                    "point_of_control": float(poc["price"].iloc[0]),
                    "value_area_low": float(area["bin_low"].min()),
                    "value_area_high": float(area["bin_high"].max()),
                }
                if len(poc)
                else {}
            ),
        },
    )


def _recent(warehouse: WarehouseResource, table: str, days: int) -> pd.DataFrame:
    return warehouse.query_frame(bars.complete_bars_sql(warehouse.qualified_table(table), days))


def _indicators_since(warehouse: WarehouseResource, timeframe: str, first: object) -> pd.DataFrame:
    table = warehouse.qualified_table(indicators_table(timeframe))
    return warehouse.query_frame(bars.rows_since_sql(table, pd.Timestamp(first).to_pydatetime()))


@dg.asset(
    name=f"{KLINES.table}_market_charts",
    deps=[btcusdt_indicators_1d, btcusdt_indicators_1h, btcusdt_levels],
    group_name=ANALYTICS_GROUP,
    kinds={"python"},
    automation_condition=UNPARTITIONED_REFRESH,
    description=f"Candlestick PNGs with volume, SMA/Bollinger, levels and buy/sell pressure: the"
    f" last {CHART_DAILY_BARS} daily bars and the last {CHART_HOURLY_DAYS} days of 1h bars.",
)
def btcusdt_market_charts(
    warehouse: WarehouseResource, artifacts: ArtifactsWriter
) -> dg.MaterializeResult:
    # matplotlib loads here, not with the code location: a kline run never draws a chart.
    from crypto_assets.analytics import charts

    levels_table = f"{KLINES.table}_levels"
    levels = (
        warehouse.query_frame(f"select * from {warehouse.qualified_table(levels_table)}")
        if warehouse.table_exists(levels_table)
        else pd.DataFrame(columns=list(structure.LEVEL_COLUMNS))
    )
    metadata: dict[str, object] = {}
    for timeframe, days, level_timeframe in (
        ("1d", CHART_DAILY_BARS, "1d"),
        ("1h", CHART_HOURLY_DAYS, "4h"),
    ):
        recent = _recent(warehouse, bars_table(timeframe), days)
        if recent.empty:
            continue
        png = charts.candlestick_chart(
            recent,
            _indicators_since(warehouse, timeframe, recent["open_time"].min()),
            levels[levels["timeframe"] == level_timeframe],
            f"{KLINES.symbol} {timeframe}, last {days} days ({level_timeframe} levels)",
        )
        name = f"charts/{KLINES.table}_{timeframe}.png"
        metadata[f"chart_{timeframe}"] = png_markdown(png, f"{KLINES.symbol} {timeframe}")
        metadata[f"chart_{timeframe}_path"] = dg.MetadataValue.path(artifacts.write(name, png))
        metadata[f"chart_{timeframe}_bytes"] = len(png)
    return dg.MaterializeResult(metadata=metadata)
