"""Data health: candles loaded per day against what a full day holds, and the days whose asset
checks failed, read from the Dagster instance the pipeline records them in."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Mapping
from datetime import datetime, timedelta

import pandas as pd

log = logging.getLogger(__name__)
CHECK_HISTORY_LIMIT = 20_000
"""Newest check evaluations read; a year of daily runs with ten checks is about 4,000."""


def expected_candles(days: pd.Series, interval_minutes: int, now: datetime) -> pd.Series:
    """A full UTC day's candle count, or for today the candles closed so far."""
    per_day = 1440 // interval_minutes
    today = pd.Timestamp(now).normalize()
    closed_today = int((pd.Timestamp(now) - today).total_seconds() // (interval_minutes * 60))
    return pd.Series(
        [min(per_day, closed_today) if pd.Timestamp(day) == today else per_day for day in days],
        index=days.index,
        dtype="int64",
    )


def health_window(
    first_open_time: pd.Timestamp, newest_open_time: pd.Timestamp, now: datetime, days: int = 90
) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The days the health tab lists: up to today when the data is recent, else up to the
    newest candle's day, ``days`` long at most and not before the first candle."""
    today = pd.Timestamp(now).normalize()
    newest_day = newest_open_time.normalize()
    last = today if today - newest_day <= pd.Timedelta(days=7) else newest_day
    return max(first_open_time.normalize(), last - pd.Timedelta(days=days - 1)), last


def daily_health(
    counts: pd.DataFrame,
    failed: Mapping[str, list[str]],
    interval_minutes: int,
    now: datetime,
    window: tuple[pd.Timestamp, pd.Timestamp],
) -> pd.DataFrame:
    """One row per day of the window: candles loaded, expected, and the failed checks."""
    loaded = {
        pd.Timestamp(day).strftime("%Y-%m-%d"): int(candles)
        for day, candles in zip(counts["trading_day"], counts["candles"], strict=True)
    }
    days = pd.Series(pd.date_range(window[0], window[1], freq="D"))
    keys = days.dt.strftime("%Y-%m-%d")
    return pd.DataFrame(
        {
            "trading_day": days,
            "candles": [loaded.get(key, 0) for key in keys],
            "expected": expected_candles(days, interval_minutes, now),
            "failed": [bool(failed.get(key)) for key in keys],
            "checks": [", ".join(sorted(failed.get(key, []))) for key in keys],
        }
    )


def failed_check_days(
    since: datetime, environ: Mapping[str, str] = os.environ
) -> tuple[dict[str, list[str]], str | None]:
    """Days since ``since`` whose newest evaluation of a check failed, from the Dagster instance
    at DAGSTER_HOME (read only); with no instance, no days and the reason."""
    home = environ.get("DAGSTER_HOME")
    if not home or not os.path.isdir(home):
        return {}, "no Dagster instance (DAGSTER_HOME is not set or absent): check results unknown"
    try:
        import dagster as dg

        instance = dg.DagsterInstance.from_config(home)
        # Deprecated for 2.0, but the one public query over every check's evaluations (the
        # per-check history needs each check's key, which only pipeline code knows).
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                records = instance.get_event_records(
                    dg.EventRecordsFilter(event_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION),
                    limit=CHECK_HISTORY_LIMIT,
                    ascending=False,
                )
        finally:
            instance.dispose()
    except Exception:
        log.exception("could not read check results from the Dagster instance at %s", home)
        return {}, "could not read check results from the Dagster instance (see the server's log)"
    newest: dict[tuple[str, str], bool] = {}
    for record in records:
        evaluation = record.event_log_entry.dagster_event.event_specific_data
        day = evaluation.partition or _single_day(evaluation.metadata.get("partitions"))
        if day is None or day < since.strftime("%Y-%m-%d"):
            continue
        newest.setdefault((day, evaluation.check_name), evaluation.passed)
    failed: dict[str, list[str]] = {}
    for (day, check), passed in newest.items():
        if not passed:
            failed.setdefault(day, []).append(check)
    return failed, None


def _single_day(partitions: object) -> str | None:
    """The day of a one-day run's evaluation; a range's result names no single day."""
    value = getattr(partitions, "value", partitions)
    if isinstance(value, str) and len(value) == 10 and "..." not in value:
        return value
    return None


def freshness(close_time: pd.Timestamp, now: datetime, max_staleness: timedelta) -> str:
    """How old the newest candle is, and whether that is within the freshness limit."""
    age = pd.Timestamp(now) - close_time
    state = "fresh" if age <= max_staleness else "late"
    return f"{format_age(age)} ({state}: the limit is {format_age(max_staleness)})"


def format_age(age: timedelta | pd.Timedelta) -> str:
    seconds = max(int(pd.Timedelta(age).total_seconds()), 0)
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {seconds} s"
