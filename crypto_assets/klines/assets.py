"""The kline lineage: raw_klines -> clean_klines -> snowflake_btcusdt.

Each asset covers the run's whole partition range and hands its IO manager one frame per day
(``DayFrames``), produced lazily: archive files and Binance pages are turned into days as they
arrive, and stored days are read back a few at a time, so years of 1m candles stream through
in a few days' memory.
"""

from collections.abc import Iterator
from datetime import datetime, timezone

import dagster as dg

from crypto_assets.klines.checks import OHLC_CHECK_SPECS, ohlc_check_results
from crypto_assets.klines.frames import DayFrames
from crypto_assets.klines.partitions import daily_partitions
from crypto_assets.klines.raw import iter_raw_days
from crypto_assets.klines.resources import BinanceArchiveResource, BinanceResource
from crypto_assets.klines.transform import (
    CLEAN_COLUMNS,
    COLUMN_DESCRIPTIONS,
    RAW_COLUMNS,
    clean_days,
    warehouse_days,
)
from crypto_assets.klines.validation import ValidationReport, validating
from crypto_assets.settings import KLINES
from crypto_assets.storage.warehouse import TABLE_METADATA_KEY

KLINES_GROUP = "klines"
KLINE_METADATA = {"symbol": KLINES.symbol, "interval": KLINES.interval}


def _column_schema(columns: tuple[str, ...]) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[
            dg.TableColumn(name, description=COLUMN_DESCRIPTIONS.get(name)) for name in columns
        ]
    )


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    io_manager_key="raw_io_manager",
    group_name=KLINES_GROUP,
    kinds={"python", "parquet"},
    metadata={**KLINE_METADATA, "dagster/column_schema": _column_schema(RAW_COLUMNS)},
)
def raw_klines(
    context: dg.AssetExecutionContext,
    binance: BinanceResource,
    binance_archive: BinanceArchiveResource,
) -> DayFrames:
    """Closed klines for each day of the run, exactly as Binance published them: the archive's
    verified daily file for days before yesterday, REST for the rest (and for archive 404s)."""
    return DayFrames(
        iter_raw_days(
            list(context.partition_keys),
            KLINES.symbol,
            KLINES.interval,
            rest=binance.get_client(),
            archive=binance_archive.get_client(),
            today=_utc_now().date(),
            now=_utc_now,
        )
    )


@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    io_manager_key="transformed_io_manager",
    group_name=KLINES_GROUP,
    kinds={"pandas", "parquet"},
    metadata={**KLINE_METADATA, "dagster/column_schema": _column_schema(CLEAN_COLUMNS)},
    check_specs=OHLC_CHECK_SPECS,
)
def clean_klines(
    context: dg.AssetExecutionContext, raw_klines: DayFrames
) -> Iterator[dg.Output | dg.AssetCheckResult]:
    """Typed, de-duplicated candles with the capstone's price_diff/price_change and more,
    each day checked against the OHLC rules as it is written."""
    report = ValidationReport(KLINES.interval)
    until_ms = int(_utc_now().timestamp() * 1000)
    yield dg.Output(
        DayFrames(batches=validating(clean_days(raw_klines).batches(), report, until_ms))
    )
    yield from ohlc_check_results(context, report)


@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    io_manager_key="warehouse_io_manager",
    group_name=KLINES_GROUP,
    kinds={"snowflake"},
    metadata={
        **KLINE_METADATA,
        "partition_expr": "open_time",
        TABLE_METADATA_KEY: KLINES.table,
        "dagster/column_schema": _column_schema(CLEAN_COLUMNS),
    },
)
def snowflake_btcusdt(clean_klines: DayFrames) -> DayFrames:
    """clean_klines in the warehouse table cryptodb.cryptoschema.btcusdt, one row per candle."""
    return warehouse_days(clean_klines)
