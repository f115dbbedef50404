"""Checks on archived days (WARN): do they still agree with REST, and with the archive itself?

- ``archive_matches_rest`` runs with every load: it refetches a sample of the run's archived
  days (the first and last) from REST and compares every candle's fields as text.
- ``archive_files_unchanged`` runs on demand (the ``archive_audit`` job, or *Execute* on the check
  in the UI, for any range of days): it compares the SHA-256 stored with each archived day to
  the archive's current CHECKSUM and names the days re-published since. Re-materializing those
  days refetches them. In a run that loads raw_klines it has nothing to do: every file was
  verified against its CHECKSUM moments before.
"""

from datetime import datetime, timezone

import dagster as dg

from crypto_assets.klines.assets import raw_klines
from crypto_assets.klines.checks import log_day_evaluations
from crypto_assets.klines.frames import DAY_MS, day_start_ms
from crypto_assets.klines.partitions import daily_partitions, is_range_run
from crypto_assets.klines.raw import ARCHIVE, source_for_day
from crypto_assets.klines.reconcile import candle_differences, changed_files
from crypto_assets.klines.transform import raw_frame
from crypto_assets.settings import KLINES
from crypto_assets.sources.binance_archive import ArchiveDayMissing

RECONCILED_DAYS = 2
SCANNED_FOR_SAMPLE = 5
"""Days looked at from each end of a run to find archived ones (a 404 day came from REST)."""
SHOWN = 10
RESOURCES = {"binance", "binance_archive", "raw_io_manager"}


def _partition_keys(context: dg.AssetCheckExecutionContext) -> list[str]:
    return list(context.op_execution_context.partition_keys)


def _stored_archive_day(context: dg.AssetCheckExecutionContext, day: str):
    frame = context.resources.raw_io_manager.read_day(KLINES.symbol, KLINES.interval, day)
    return frame if frame is not None and frame.attrs.get("source") == ARCHIVE else None


def _sample(context: dg.AssetCheckExecutionContext, keys: list[str]) -> dict:
    """The first and last archived days of the run, with their stored frames."""
    today = datetime.now(timezone.utc).date()
    candidates = [
        day for day in keys if source_for_day(day, today, archive_enabled=True) == ARCHIVE
    ]
    sample: dict = {}
    for ordered in (candidates[:SCANNED_FOR_SAMPLE], candidates[::-1][:SCANNED_FOR_SAMPLE]):
        for day in ordered:
            frame = None if day in sample else _stored_archive_day(context, day)
            if frame is not None:
                sample[day] = frame
                break
    return dict(sorted(sample.items())[:RECONCILED_DAYS])


def _log_days(
    context: dg.AssetCheckExecutionContext, check_name: str, results: dict[str, tuple[bool, dict]]
) -> None:
    """In a range run, each day's own result (passed, metadata), see ``log_day_evaluations``."""
    if is_range_run(context.run):
        log_day_evaluations(
            context,
            [
                (
                    day,
                    {
                        "check_name": check_name,
                        "asset_key": raw_klines.key,
                        "passed": passed,
                        "severity": dg.AssetCheckSeverity.WARN,
                        "metadata": {"partitions": day, **metadata},
                    },
                )
                for day, (passed, metadata) in results.items()
            ],
        )


def _range_result(
    context: dg.AssetCheckExecutionContext, check_name: str, passed: bool, metadata: dict
) -> dg.AssetCheckResult:
    """The check's result for the run, and in a range run the same for every day (the result
    speaks for the range), so no day of a backfill is left showing as planned."""
    _log_days(context, check_name, dict.fromkeys(_partition_keys(context), (passed, metadata)))
    return dg.AssetCheckResult(
        passed=passed, severity=dg.AssetCheckSeverity.WARN, metadata=metadata
    )


@dg.asset_check(
    asset=raw_klines,
    blocking=False,
    partitions_def=daily_partitions,
    required_resource_keys=RESOURCES,
    description="The run's first and last archived days equal REST, candle by candle.",
)
def archive_matches_rest(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    client = context.resources.binance.get_client()
    differences: list[str] = []
    sample = _sample(context, _partition_keys(context))
    for day, stored in sample.items():
        start = day_start_ms(day)
        pages = client.iter_kline_pages(KLINES.symbol, KLINES.interval, start, start + DAY_MS)
        rows = [kline for page in pages for kline in page]
        rest = raw_frame(rows, KLINES.symbol, KLINES.interval, datetime.now(timezone.utc))
        differences += candle_differences(stored, rest, day)
    return _range_result(
        context,
        "archive_matches_rest",
        passed=not differences,
        metadata={
            "days_compared": dg.MetadataValue.json(list(sample)),
            "differences": dg.MetadataValue.json(differences[:SHOWN]),
        },
    )


@dg.asset_check(
    asset=raw_klines,
    blocking=False,
    partitions_def=daily_partitions,
    required_resource_keys=RESOURCES,
    description="Each archived day's stored SHA-256 is still the archive's published CHECKSUM.",
)
def archive_files_unchanged(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    if raw_klines.key in (context.run.asset_selection or set()):
        return _range_result(
            context,
            "archive_files_unchanged",
            passed=True,
            metadata={
                "checked": "every archive file was verified against its CHECKSUM in this run"
            },
        )
    archive = context.resources.binance_archive.get_client()
    stored, published = {}, {}
    for day in _partition_keys(context):
        frame = _stored_archive_day(context, day)
        if frame is None or archive is None:
            continue
        stored[day] = frame.attrs.get("sha256", "")
        try:
            published[day] = archive.published_sha256(KLINES.symbol, KLINES.interval, day)
        except ArchiveDayMissing:
            published[day] = None
    changed = changed_files(stored, published)
    _log_days(
        context,
        "archive_files_unchanged",
        {
            day: (day not in changed, {"archived": day in stored, **changed.get(day, {})})
            for day in _partition_keys(context)
        },
    )
    return dg.AssetCheckResult(
        passed=not changed,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "archived_days_checked": len(stored),
            "republished_days": dg.MetadataValue.json(dict(list(changed.items())[:SHOWN])),
        },
    )


archive_audit_job = dg.define_asset_job(
    "archive_audit",
    selection=dg.AssetSelection.checks(archive_files_unchanged),
    partitions_def=daily_partitions,
    description="Names archived days whose archive file was re-published since they were loaded.",
)
