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
    ``lows[k][i]`` is ``min(low[i : i + 2**k])`` (a sparse table), padded to one past the last
    bar so that no lookup needs clipping."""

    lows: list[np.ndarray]
    negated_highs: list[np.ndarray]

    @classmethod
    def of(cls, low: np.ndarray, high: np.ndarray) -> "Reach":
        return cls(_sparse_minima(low), _sparse_minima(-high))


def _sparse_minima(values: np.ndarray) -> list[np.ndarray]:
    count = len(values)
    tables, span = [np.append(values, np.inf)], 1
    while 2 * span <= count:
        previous = tables[-1]
        table = np.full(count + 1, np.inf)
        np.minimum(previous[: count - span], previous[span:count], out=table[: count - span])
        tables.append(table)
        span *= 2
    return tables


def first_at_or_below(
    tables: list[np.ndarray], starts: np.ndarray, levels: np.ndarray, limits: np.ndarray
) -> np.ndarray:
    """For each trade, the first bar i from ``starts`` on whose value is at or below its level,
    or its limit when none is before it: every bar passed over is above the level, so the
    comparisons are the bar-by-bar ones, exactly."""
    position = starts.copy()
    longest = int((limits - starts).max(initial=0))
    for power in range(min(longest.bit_length(), len(tables)) - 1, -1, -1):
        span = 1 << power
        position += span * ((position + span <= limits) & (tables[power][position] > levels))
    return position


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
