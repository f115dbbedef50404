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
