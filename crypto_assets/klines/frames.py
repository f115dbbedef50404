"""The value every layer passes, and the UTC-day arithmetic that names its days.

``DayFrames`` lives below its users (assets, IO managers, checks), so storage can accept it
without importing the transforms.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date, datetime, timedelta, timezone

import pandas as pd

DAY_MS = 86_400_000


class DayBatch:
    """Consecutive days stacked in one frame, in day order, with each day's row count.

    Per-call overhead dominates pandas and Arrow work on a 1,440-row day, so reading, cleaning
    and loading several days as one frame costs less than doing it day by day; the days are
    sliced out again only where a day is the unit (a partition's file, its check result).
    ``rejections`` names the days that failed a blocking check, with what failed: they are
    stored marked, so that no later read takes them onward.
    """

    def __init__(
        self,
        keys: list[str],
        frame: pd.DataFrame,
        lengths: list[int],
        rejections: dict[str, dict] | None = None,
    ) -> None:
        if len(keys) != len(lengths) or sum(lengths) != len(frame):
            raise ValueError(
                f"A batch of days {keys} with row counts {lengths} does not match its frame"
                f" of {len(frame)} rows."
            )
        self.keys = keys
        self.frame = frame
        self.lengths = lengths
        self.rejections = rejections or {}

    @classmethod
    def one_day(cls, partition_key: str, frame: pd.DataFrame) -> DayBatch:
        return cls([partition_key], frame, [len(frame)])

    def days(self) -> Iterator[tuple[str, pd.DataFrame]]:
        """Each day's rows as a frame of its own (a view, indexed from 0 like a day read alone)."""
        if len(self.keys) == 1:
            yield self.keys[0], self.frame
            return
        start = 0
        for partition_key, length in zip(self.keys, self.lengths, strict=True):
            day = self.frame.iloc[start : start + length]
            day.index = pd.RangeIndex(length)
            yield partition_key, day
            start += length

    def with_frame(self, frame: pd.DataFrame) -> DayBatch:
        """The same days and row counts over a frame computed row for row from this one."""
        return DayBatch(self.keys, frame, self.lengths, self.rejections)

    def rejecting(self, rejections: dict[str, dict]) -> DayBatch:
        """The same batch with these days marked as failing a blocking check."""
        return DayBatch(self.keys, self.frame, self.lengths, {**self.rejections, **rejections})


class DayFrames:
    """(partition key 'YYYY-MM-DD', that day's frame) pairs in day order, produced lazily.

    The value assets hand their IO managers: iterating it computes one day at a time. A source
    that can stack days (a zone read back several days at a time) passes ``batches`` instead, which
    vectorized steps take whole through ``batches()``.
    """

    def __init__(
        self,
        pairs: Iterable[tuple[str, pd.DataFrame]] = (),
        *,
        batches: Iterable[DayBatch] | None = None,
    ) -> None:
        self._pairs = pairs
        self._batches = batches

    def __iter__(self) -> Iterator[tuple[str, pd.DataFrame]]:
        if self._batches is None:
            return iter(self._pairs)
        return (day for batch in self._batches for day in batch.days())

    def batches(self) -> Iterator[DayBatch]:
        """The days as the source stacked them; a source of single days gives one-day batches."""
        if self._batches is None:
            return (DayBatch.one_day(key, frame) for key, frame in self._pairs)
        return iter(self._batches)

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
