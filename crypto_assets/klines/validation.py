"""Pure OHLC rules over clean klines, each naming the candles that break it.

A rule is a function from a day's clean frame to a boolean mask of offending rows; the report
accumulates them day by day so a month-long range is validated in one day's memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from crypto_assets.klines.frames import DayBatch, DayFrames
from crypto_assets.klines.transform import DECIMAL_FIELDS, expected_open_times
from crypto_assets.sources.binance_rest import INTERVAL_MS

MAX_LISTED = 10

Candles = dict[str, np.ndarray]
"""A day's clean columns as numpy arrays, times as epoch ms: the rules run on arrays, since
pandas' per-operation overhead made validating a day cost more than cleaning it."""
Rule = Callable[[Candles, str], np.ndarray]


def _unique_on_grid(candles: Candles, interval: str) -> np.ndarray:
    open_times = candles["open_time"]
    values, inverse, counts = np.unique(open_times, return_inverse=True, return_counts=True)
    duplicated = (
        counts[inverse] > 1 if len(values) < len(open_times) else np.zeros_like(open_times, bool)
    )
    return duplicated | (open_times % INTERVAL_MS[interval] != 0)


OHLC_RULES: dict[str, tuple[str, Rule]] = {
    "low_at_or_below_open_and_close": (
        "low <= min(open, close) and low <= high",
        lambda c, _: (c["low"] > np.fmin(c["open"], c["close"])) | (c["low"] > c["high"]),
    ),
    "high_at_or_above_open_and_close": (
        "high >= max(open, close)",
        lambda c, _: c["high"] < np.fmax(c["open"], c["close"]),
    ),
    "prices_positive": (
        "open, high, low and close > 0",
        lambda c, _: (c["open"] <= 0) | (c["high"] <= 0) | (c["low"] <= 0) | (c["close"] <= 0),
    ),
    "volumes_non_negative": (
        "volume, quote_asset_volume and num_trades >= 0",
        lambda c, _: (c["volume"] < 0) | (c["quote_asset_volume"] < 0) | (c["num_trades"] < 0),
    ),
    "taker_base_within_volume": (
        "taker_base_vol <= volume",
        lambda c, _: c["taker_base_vol"] > c["volume"],
    ),
    "taker_quote_within_quote_volume": (
        "taker_quote_vol <= quote_asset_volume",
        lambda c, _: c["taker_quote_vol"] > c["quote_asset_volume"],
    ),
    "close_time_matches_interval": (
        "close_time = open_time + interval - 1 ms",
        lambda c, interval: c["close_time"] - c["open_time"] != INTERVAL_MS[interval] - 1,
    ),
    "open_time_unique_on_grid": (
        "open_time unique and a multiple of the interval",
        _unique_on_grid,
    ),
}
_RULE_COLUMNS = (*DECIMAL_FIELDS, "num_trades")


def candles_of(frame: pd.DataFrame) -> Candles:
    """The columns the rules read, as arrays; open_time and close_time as epoch ms."""
    candles = {column: frame[column].to_numpy() for column in _RULE_COLUMNS}
    for column in ("open_time", "close_time"):
        candles[column] = _epoch_ms(frame[column])
    return candles


def _epoch_ms(times: pd.Series) -> np.ndarray:
    return times.to_numpy(dtype="datetime64[ns]").view("int64") // 1_000_000


COMPLETENESS = "complete_day"


@dataclass
class Violations:
    """How many candles broke a rule, the first few of them and the last one by open_time
    (the first and last say where a maintenance gap begins and ends)."""

    count: int = 0
    first_open_times: list[str] = field(default_factory=list)
    last_open_time: str | None = None

    def add(self, open_times: pd.Series) -> None:
        if not len(open_times):
            return
        self.count += len(open_times)
        room = MAX_LISTED - len(self.first_open_times)
        if room > 0:
            self.first_open_times.extend(_iso(value) for value in open_times.iloc[:room])
        self.last_open_time = _iso(open_times.iloc[-1])

    def merge(self, other: Violations) -> None:
        self.count += other.count
        room = MAX_LISTED - len(self.first_open_times)
        self.first_open_times.extend(other.first_open_times[: max(room, 0)])
        self.last_open_time = other.last_open_time or self.last_open_time

    @property
    def passed(self) -> bool:
        return self.count == 0


def _iso(value: pd.Timestamp) -> str:
    return pd.Timestamp(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_ohlc(frame: pd.DataFrame, interval: str) -> dict[str, pd.Series]:
    """Open times of the candles that break each OHLC rule (empty when the day is sound)."""
    candles = candles_of(frame)
    open_times = frame["open_time"]
    none = open_times.iloc[:0]
    offenders = {}
    for name, (_, rule) in OHLC_RULES.items():
        mask = rule(candles, interval)
        offenders[name] = open_times[mask] if mask.any() else none
    return offenders


def missing_open_times(
    frame: pd.DataFrame, partition_key: str, interval: str, until_ms: int | None = None
) -> pd.Series:
    """Open times a complete day should hold but this one does not (Binance has real gaps)."""
    expected = expected_open_times(partition_key, interval, until_ms)
    present = _epoch_ms(frame["open_time"])
    if np.array_equal(present, expected):  # nearly every day: complete, in order
        missing = expected[:0]
    else:
        missing = np.setdiff1d(expected, present, assume_unique=False)
    return pd.Series(pd.to_datetime(missing, unit="ms", utc=True))


@dataclass
class DayValidation:
    """One day's violations per rule, and its candle counts."""

    partition_key: str
    rules: dict[str, Violations]
    rows: int
    expected_rows: int

    def failed_ohlc_rules(self) -> dict[str, dict]:
        """The OHLC rules (the blocking ones) this day breaks, each with how many candles and
        the first of them: what a stored day's rejection mark says."""
        return {
            name: {
                "offending_rows": violations.count,
                "first_offending_open_times": violations.first_open_times,
            }
            for name, violations in self.rules.items()
            if name in OHLC_RULES and not violations.passed
        }


def validate_day(
    partition_key: str, frame: pd.DataFrame, interval: str, until_ms: int | None = None
) -> DayValidation:
    rules = {name: Violations() for name in (*OHLC_RULES, COMPLETENESS)}
    for name, open_times in check_ohlc(frame, interval).items():
        rules[name].add(open_times)
    rules[COMPLETENESS].add(missing_open_times(frame, partition_key, interval, until_ms))
    expected = len(expected_open_times(partition_key, interval, until_ms))
    return DayValidation(partition_key, rules, len(frame), expected)


@dataclass
class ValidationReport:
    """Every rule's violations over a range of days, in total and day by day."""

    interval: str
    days: list[DayValidation] = field(default_factory=list)
    rules: dict[str, Violations] = field(default_factory=dict)
    rows: int = 0
    expected_rows: int = 0

    def __post_init__(self) -> None:
        for name in (*OHLC_RULES, COMPLETENESS):
            self.rules.setdefault(name, Violations())

    def add_day(
        self, partition_key: str, frame: pd.DataFrame, until_ms: int | None = None
    ) -> DayValidation:
        day = validate_day(partition_key, frame, self.interval, until_ms)
        for name, violations in day.rules.items():
            self.rules[name].merge(violations)
        self.days.append(day)
        self.rows += day.rows
        self.expected_rows += day.expected_rows
        return day


def validate_days(days: DayFrames, interval: str, until_ms: int | None = None) -> ValidationReport:
    report = ValidationReport(interval)
    for partition_key, frame in days:
        report.add_day(partition_key, frame, until_ms)
    return report


def validating(
    batches: Iterable[DayBatch], report: ValidationReport, until_ms: int | None = None
) -> Iterator[DayBatch]:
    """The same batches, each day added to ``report`` as it passes: whoever writes the days
    validates them on the way, instead of reading them back afterwards. A day that breaks an
    OHLC rule comes out marked rejected (``DayBatch.rejections``), for its writer to store the
    mark with it."""
    for batch in batches:
        rejections = {}
        for partition_key, frame in batch.days():
            failed = report.add_day(partition_key, frame, until_ms).failed_ohlc_rules()
            if failed:
                rejections[partition_key] = failed
        yield batch.rejecting(rejections) if rejections else batch


def describe(rule_name: str) -> str:
    if rule_name == COMPLETENESS:
        return "every candle of the day is present"
    return OHLC_RULES[rule_name][0]
