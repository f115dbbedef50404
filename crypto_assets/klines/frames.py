"""The value every layer passes, and the UTC-day arithmetic that names its days.

``DayFrames`` lives below its users (assets, IO managers, checks), so storage can accept it
without importing the transforms.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date, datetime, timedelta, timezone

import pandas as pd

DAY_MS = 86_400_000


class DayFrames:
    """(partition key 'YYYY-MM-DD', that day's frame) pairs in day order, produced lazily.

    The value assets hand their IO managers: iterating it computes one day at a time.
    """

    def __init__(self, pairs: Iterable[tuple[str, pd.DataFrame]]) -> None:
        self._pairs = pairs

    def __iter__(self) -> Iterator[tuple[str, pd.DataFrame]]:
        return iter(self._pairs)

    def row_counts(self) -> dict[str, int]:
        """Rows per day. Stored days answer from the file's footer without reading the rows."""
        return {partition_key: len(frame) for partition_key, frame in self}


def day_key(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d")


def day_start_ms(partition_key: str) -> int:
    day = date.fromisoformat(partition_key)
    return int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp() * 1000)


def day_keys_between(first_key: str, last_key: str) -> list[str]:
    """Every day key from first_key to last_key, both included."""
    first, last = date.fromisoformat(first_key), date.fromisoformat(last_key)
    return [
        (first + timedelta(days=offset)).isoformat() for offset in range((last - first).days + 1)
    ]


def split_frame_by_day(frame: pd.DataFrame, day_keys: list[str]) -> list[tuple[str, pd.DataFrame]]:
    """One frame per day key, by the UTC date of open_time; days without rows get an empty frame."""
    open_days = pd.to_datetime(frame["open_time"], utc=True).dt.strftime("%Y-%m-%d")
    return [(key, frame[open_days == key].reset_index(drop=True)) for key in day_keys]
