"""Contiguous stretches of bars, so no return, indicator or backtest bridges a hole in the data.

A user may load one day, then backfill from two weeks later: the bars then hold a 14-day hole.
A series that steps over it turns the hole into one bar-to-bar move. A gap of more than
``MAX_GAP`` between one bar's end and the next bar's open ends a stretch; shorter holes (Binance's
maintenance hours, a missing day of 1d bars) stay inside it, as they do on the exchange's own
charts. The bar length is the timeframe's, never read from the data.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd

MAX_GAP = pd.Timedelta(days=1)


@dataclass(frozen=True)
class Gap:
    """A hole that ends a stretch: from the end of one bar to the open of the next."""

    start: pd.Timestamp
    end: pd.Timestamp

    def __str__(self) -> str:
        return f"{self.start:%Y-%m-%d %H:%M} .. {self.end:%Y-%m-%d %H:%M} ({self.end - self.start})"


def stretch_ids(open_times: pd.Series, bar_length: pd.Timedelta) -> np.ndarray:
    """The stretch each bar (ordered by open_time) belongs to: 0, 1, ... in time order."""
    times = open_times.to_numpy(dtype="datetime64[ns]")
    holes = times[1:] - (times[:-1] + bar_length.to_timedelta64())
    return np.concatenate([[0], np.cumsum(holes > MAX_GAP.to_timedelta64())]).astype(int)


def gaps(open_times: pd.Series, bar_length: pd.Timedelta) -> list[Gap]:
    """The holes that end a stretch, oldest first."""
    times = pd.DatetimeIndex(open_times)
    ids = stretch_ids(open_times, bar_length)
    breaks = np.flatnonzero(np.diff(ids)) + 1
    return [Gap(times[index - 1] + bar_length, times[index]) for index in breaks]


def newest_stretch(bars: pd.DataFrame, bar_length: pd.Timedelta) -> pd.DataFrame:
    """The bars (ordered by open_time) after the last hole that ends a stretch."""
    if bars.empty:
        return bars
    ids = stretch_ids(bars["open_time"], bar_length)
    return bars[ids == ids[-1]].reset_index(drop=True)
