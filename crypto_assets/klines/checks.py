"""Asset checks: OHLC validity on clean_klines (blocking), warehouse row counts.

The OHLC checks block: a day that fails one never reaches the warehouse in the same run.
Completeness only warns, since Binance has real maintenance gaps. clean_klines runs them itself
on each day as it writes it (``check_specs``), rather than in a step of their own that read
every day back from Parquet. Asset keys are named here rather than imported, so the assets
can import these specs.
"""

from collections.abc import Iterator

import dagster as dg

from crypto_assets.klines.frames import DayFrames
from crypto_assets.klines.partitions import daily_partitions, is_range_run
from crypto_assets.klines.validation import (
    COMPLETENESS,
    OHLC_RULES,
    ValidationReport,
    Violations,
    describe,
)
from crypto_assets.settings import KLINES
from crypto_assets.storage.warehouse import WarehouseResource, rows_per_day

CLEAN_KLINES = dg.AssetKey("clean_klines")
SNOWFLAKE_BTCUSDT = dg.AssetKey("snowflake_btcusdt")
BLOCKING_CHECKS = set(OHLC_RULES)
OHLC_CHECK_SPECS = [
    dg.AssetCheckSpec(
        name,
        asset=CLEAN_KLINES,
        blocking=name in BLOCKING_CHECKS,
        description=describe(name),
        partitions_def=daily_partitions,
    )
    for name in (*OHLC_RULES, COMPLETENESS)
]

CheckContext = dg.AssetCheckExecutionContext | dg.AssetExecutionContext


def _partition_range(context: CheckContext) -> str:
    keys = context.op_execution_context.partition_keys
    return keys[0] if len(keys) == 1 else f"{keys[0]}...{keys[-1]}"


def _ohlc_evaluation(
    name: str, violations: Violations, partitions: str, rows: int, expected_rows: int
) -> dict:
    return {
        "check_name": name,
        "asset_key": CLEAN_KLINES,
        "passed": violations.passed,
        "severity": dg.AssetCheckSeverity.WARN
        if name == COMPLETENESS
        else dg.AssetCheckSeverity.ERROR,
        "metadata": {
            "partitions": partitions,
            "rule": describe(name),
            "offending_rows": violations.count,
            "offending_open_times": dg.MetadataValue.json(violations.first_open_times),
            "first_offending_open_time": (violations.first_open_times or [""])[0],
            "last_offending_open_time": violations.last_open_time or "",
            "rows": rows,
            "expected_rows": expected_rows,
        },
    }


PER_DAY_RECORDS_UP_TO_DAYS = 31
"""Each recorded evaluation costs about 10 ms of event-log writes: a month of days records every
result; a longer range (a year-long bulk load) records only the days that failed."""


def log_day_evaluations(context: CheckContext, evaluations: list[tuple[str, dict]]) -> None:
    """Records each day's own result in a range run, so the UI shows it for backfilled days.

    A check's results in a range run cover the whole range and carry no partition; without
    these, Dagster would show every day of a backfill as skipped.
    """
    every_day = (
        len({partition_key for partition_key, _ in evaluations}) <= PER_DAY_RECORDS_UP_TO_DAYS
    )
    for partition_key, evaluation in evaluations:
        if every_day or not evaluation["passed"]:
            context.op_execution_context.log_event(
                dg.AssetCheckEvaluation(
                    **evaluation,
                    blocking=evaluation["check_name"] in BLOCKING_CHECKS,
                    target_materialization_data=None,
                    partition=partition_key,
                )
            )


def ohlc_check_results(
    context: dg.AssetExecutionContext, report: ValidationReport
) -> Iterator[dg.AssetCheckResult]:
    """The OHLC checks' results for clean_klines' run, once its days are written and validated:
    one result per rule for the run's range, each naming the first offending open_times, and
    each day's own result recorded for a range (see ``log_day_evaluations``)."""
    selected = {key.name for key in context.selected_asset_check_keys}
    if is_range_run(context.run):
        log_day_evaluations(
            context,
            [
                (
                    day.partition_key,
                    _ohlc_evaluation(
                        name, violations, day.partition_key, day.rows, day.expected_rows
                    ),
                )
                for day in report.days
                for name, violations in day.rules.items()
                if name in selected
            ],
        )
    partitions = _partition_range(context)
    for name, violations in report.rules.items():
        if name in selected:
            yield dg.AssetCheckResult(
                **_ohlc_evaluation(name, violations, partitions, report.rows, report.expected_rows)
            )


@dg.asset_check(
    asset=SNOWFLAKE_BTCUSDT,
    additional_ins={"clean_days": dg.AssetIn(CLEAN_KLINES)},
    description="The warehouse holds as many rows per day as clean_klines.",
    partitions_def=daily_partitions,
)
def warehouse_matches_clean_klines(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource, clean_days: DayFrames
) -> dg.AssetCheckResult:
    expected = clean_days.row_counts()
    days = list(expected)
    loaded = rows_per_day(warehouse, KLINES.table, days[0], days[-1])
    mismatched = {
        day: {"clean_klines": expected[day], "warehouse": loaded.get(day, 0)}
        for day in days
        if loaded.get(day, 0) != expected[day]
    }
    if is_range_run(context.run):
        log_day_evaluations(
            context,
            [
                (
                    day,
                    {
                        "check_name": "warehouse_matches_clean_klines",
                        "asset_key": SNOWFLAKE_BTCUSDT,
                        "passed": day not in mismatched,
                        "metadata": {
                            "partitions": day,
                            "clean_rows": expected[day],
                            "warehouse_rows": loaded.get(day, 0),
                        },
                        "severity": dg.AssetCheckSeverity.ERROR,
                    },
                )
                for day in days
            ],
        )
    return dg.AssetCheckResult(
        passed=not mismatched,
        metadata={
            "partitions": _partition_range(context),
            "clean_rows": sum(expected.values()),
            "warehouse_rows": sum(loaded.get(day, 0) for day in days),
            "mismatched_days": dg.MetadataValue.json(dict(list(mismatched.items())[:10])),
        },
    )
