"""Test helpers that run the real lineage in-process with a given resource set."""

from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pandas as pd

from crypto_assets.klines.archive_checks import archive_files_unchanged, archive_matches_rest
from crypto_assets.klines.assets import clean_klines, raw_klines, snowflake_btcusdt
from crypto_assets.klines.checks import warehouse_matches_clean_klines
from crypto_assets.klines.frames import DayFrames
from crypto_assets.klines.transform import clean_frame, raw_frame, warehouse_frame
from crypto_assets.storage.warehouse import TABLE_METADATA_KEY

LINEAGE = [raw_klines, clean_klines, snowflake_btcusdt]
CHECKS = [
    warehouse_matches_clean_klines,
    archive_matches_rest,
    archive_files_unchanged,
]


def lineage_definitions(resources: dict[str, Any]) -> dg.Definitions:
    return dg.Definitions(assets=LINEAGE, asset_checks=CHECKS, resources=resources)


def materialize_days(
    resources: dict[str, Any],
    first_day: str,
    last_day: str | None = None,
    instance: dg.DagsterInstance | None = None,
) -> dg.ExecuteInProcessResult:
    """One run over [first_day, last_day], as a single-run backfill would launch it."""
    job = lineage_definitions(resources).resolve_implicit_global_asset_job_def()
    return job.execute_in_process(
        instance=instance,
        tags={
            "dagster/asset_partition_range_start": first_day,
            "dagster/asset_partition_range_end": last_day or first_day,
        },
        raise_on_error=False,
    )


def check_results(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {
        evaluation.check_name: evaluation
        for evaluation in (
            event.event_specific_data
            for event in result.all_events
            if event.event_type_value == "ASSET_CHECK_EVALUATION"
        )
    }


def failure_text(result: dg.ExecuteInProcessResult) -> str:
    """Every step failure's error with its causes, as the run page shows it."""
    return "\n".join(
        event.step_failure_data.error.to_string()
        for event in result.all_events
        if event.is_step_failure and event.step_failure_data.error
    )


def warehouse_day(rows: list[list], interval: str = "1m") -> pd.DataFrame:
    """Binance rows as the warehouse IO manager receives them: raw, cleaned, warehouse-shaped."""
    return warehouse_frame(
        clean_frame(raw_frame(rows, "BTCUSDT", interval, datetime.now(timezone.utc)))
    )


def warehouse_loader(
    partitions_def: dg.PartitionsDefinition,
    days: Callable[[], Iterable[tuple[str, pd.DataFrame]]],
) -> dg.AssetsDefinition:
    """A stand-in for snowflake_btcusdt that hands the warehouse IO manager the given days."""

    @dg.asset(
        name="snowflake_btcusdt",
        partitions_def=partitions_def,
        io_manager_key="warehouse_io_manager",
        metadata={"partition_expr": "open_time", TABLE_METADATA_KEY: "btcusdt"},
    )
    def load() -> DayFrames:
        return DayFrames(days())

    return load


def warehouse_open_times(database: Path) -> list[int]:
    """The local warehouse's open times in ms, oldest first: a repeated candle shows twice."""
    with duckdb.connect(str(database), read_only=True) as connection:
        rows = connection.execute(
            "select open_time from cryptodb.cryptoschema.btcusdt order by open_time"
        ).fetchall()
    return [int(row[0].replace(tzinfo=timezone.utc).timestamp() * 1000) for row in rows]
