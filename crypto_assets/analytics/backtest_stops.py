"""Where a trade's stop-loss or take-profit ends it: the first bar, from the entry bar on and
before the signal's exit, whose low reaches the stop or whose high reaches the target.

A grid runs thousands of sets over the same bars, so the bars are indexed once (``Reach``) and
each run then finds every trade's first touch in log2(bars) steps over its trades, instead of a
pass over every bar of every run.
"""

from dataclasses import dataclass

import numpy as np

from crypto_assets.analytics.backtest_metrics import STOP_LOSS, TAKE_PROFIT


@dataclass(frozen=True)
class Reach:
    """The lowest low and the lowest negated high of every run of 1, 2, 4 ... bars:
    ``lows[k, i]`` is ``min(low[i : i + 2**k])`` (a sparse table), padded to one past the last
    bar so that no lookup needs clipping."""

    lows: np.ndarray
    negated_highs: np.ndarray

    @classmethod
    def of(cls, low: np.ndarray, high: np.ndarray) -> "Reach":
        return cls(_sparse_minima(low), _sparse_minima(-high))


def _sparse_minima(values: np.ndarray) -> np.ndarray:
    count = len(values)
    tables = np.full((max(count, 1).bit_length(), count + 1), np.inf)
    tables[0, :count] = values
    for power in range(1, len(tables)):
        span = 1 << (power - 1)
        previous = tables[power - 1]
        np.minimum(
            previous[: count - span], previous[span:count], out=tables[power, : count - span]
        )
    return tables


def first_at_or_below(
    tables: np.ndarray, starts: np.ndarray, levels: np.ndarray, limits: np.ndarray
) -> np.ndarray:
    """For each trade, the first bar i from ``starts`` on (``starts < limits``) whose value is at
    or below its level, or its limit when none is before it. Every bar passed over is above the
    level, so the comparisons are the bar-by-bar ones, exactly."""
    found = limits.copy()
    # Each trade's lowest value, from two runs of 2**k bars that cover its bars: only the trades
    # that reach their level are searched.
    powers = np.frexp(limits - starts)[1] - 1
    lowest = np.minimum(tables[powers, starts], tables[powers, limits - (1 << powers)])
    reached = np.flatnonzero(lowest <= levels)
    if not len(reached):
        return found
    position, levels, limits = starts[reached], levels[reached], limits[reached]
    for power in range(int(powers[reached].max()), -1, -1):
        span = 1 << power
        position += span * ((position + span <= limits) & (tables[power][position] > levels))
    found[reached] = position
    return found


def apply_stops(
    reach: Reach,
    opens: np.ndarray,
    lows: np.ndarray,
    entry_bars: np.ndarray,
    entry_fill: np.ndarray,
    stop_loss_pct: float | None,
    take_profit_pct: float | None,
    exit_bars: np.ndarray,
    reasons: np.ndarray,
    exit_level: np.ndarray,
) -> None:
    """Moves each trade's exit to the first bar (from its entry bar on) whose low reaches the
    stop or whose high reaches the target, in place; a bar that touches both is a stop."""
    first = exit_bars.copy()
    stop = target = None
    if stop_loss_pct:
        stop = entry_fill * (1 - stop_loss_pct)
        first = first_at_or_below(reach.lows, entry_bars, stop, exit_bars)
    if take_profit_pct:
        target = entry_fill * (1 + take_profit_pct)
        reached = first_at_or_below(reach.negated_highs, entry_bars, -target, exit_bars)
        first = np.minimum(first, reached)
    hit_trade = np.flatnonzero(first < exit_bars)
    if not len(hit_trade):
        return
    bars = first[hit_trade]
    opens = opens[bars]
    by_stop = lows[bars] <= stop[hit_trade] if stop is not None else np.zeros(len(bars), bool)
    exit_bars[hit_trade] = bars
    reasons[hit_trade] = np.where(by_stop, STOP_LOSS, TAKE_PROFIT)
    stop_fill = np.minimum(opens, stop[hit_trade]) if stop is not None else 0.0
    target_fill = np.maximum(opens, target[hit_trade]) if target is not None else 0.0
    exit_level[hit_trade] = np.where(by_stop, stop_fill, target_fill)
