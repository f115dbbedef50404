"""Daily UTC partitions from the symbol's first trading day up to and including today."""

import dagster as dg

from crypto_assets.settings import KLINES

daily_partitions = dg.DailyPartitionsDefinition(
    start_date=KLINES.start_date,
    timezone="UTC",
    end_offset=1,
)
"""Keys are YYYY-MM-DD. end_offset=1 adds today's partition, so fresh candles can land before the
day closes; its completeness check counts only candles closed by the time it runs."""


def is_range_run(run: dg.DagsterRun | None) -> bool:
    """A run over a range of days (a backfill, even of one day) rather than of one partition:
    its check results carry no partition, so checks record each day's result beside them."""
    tags = run.tags if run else {}
    return "dagster/asset_partition_range_start" in tags and "dagster/partition" not in tags
