"""A vectorised long/flat backtest engine (spot: no shorts, no leverage); its result and metrics
are in ``backtest_metrics``.

Conventions, written down once:

- A strategy's signal on a bar's close (1 long, 0 flat) is acted on at the next bar's open; a
  position is never opened on information the bar's open did not have. A run of bars held by the
  signal is one trade at most: after a stop or a target closes it, the next entry waits for a
  fresh signal (the signal turning flat, then long again).
- An entry spends ``position_size`` of the equity, fee included; the rest stays in cash. An exit
  sells the whole position. A buy fills at open x (1 + slippage), a sale at its price x
  (1 - slippage), and each side pays the fee on its filled value.
- Stop-loss and take-profit levels are set from the entry fill (entry x (1 - stop_loss_pct),
  entry x (1 + take_profit_pct)) and are watched from the entry bar on, with each bar's low and
  high. A stop fills at its level, or at the bar's open if the bar opened through it; a target at
  its level, or at the open if the bar opened above it. When one bar touches both, the stop is
  assumed to have come first (the conservative order; backtesting.py does the same).
- A signal exit sells at the next bar's open before that bar is watched for a stop. A position
  still open at the end of the sample is sold at the last bar's close (``end_of_sample``).
"""

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from crypto_assets.analytics.backtest_metrics import (
    DAY_NS,
    END_OF_SAMPLE,
    SIGNAL,
    STOP_LOSS,
    TAKE_PROFIT,
    BacktestResult,
    metrics,
)

DEFAULT_FEE_BPS = 10.0  # Binance spot's base taker/maker rate, each side
DEFAULT_SLIPPAGE_BPS = 5.0
MAX_COST_BPS = 1_000.0
"""10% a side: far above any exchange's fee or a liquid market's slippage; more is a typo."""


@dataclass(frozen=True)
class Costs:
    fee_bps: float = DEFAULT_FEE_BPS
    slippage_bps: float = DEFAULT_SLIPPAGE_BPS

    def __post_init__(self) -> None:
        for name in ("fee_bps", "slippage_bps"):
            check_cost_bps(name, getattr(self, name))

    @property
    def fee(self) -> float:
        return self.fee_bps / 10_000

    @property
    def slippage(self) -> float:
        return self.slippage_bps / 10_000


def check_cost_bps(name: str, value: float) -> float:
    """A cost in basis points a backtest can mean: a number from 0 to MAX_COST_BPS. A negative
    fee would pay the strategy to trade, NaN would blank every metric without an error."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name}={value!r}: expected a number of basis points.")
    if not (math.isfinite(value) and 0 <= value <= MAX_COST_BPS):
        raise ValueError(f"{name}={value!r}: expected basis points from 0 to {MAX_COST_BPS:g}.")
    return float(value)


DEFAULT_COSTS = Costs()


@dataclass(frozen=True)
class Exits:
    """How a trade is left besides its signal, and how much of the equity it takes."""

    stop_loss_pct: float | None = None
    take_profit_pct: float | None = None
    position_size: float = 1.0

    def __post_init__(self) -> None:
        if not 0 < self.position_size <= 1:
            raise ValueError(f"position_size must be in (0, 1], not {self.position_size}")
        for name in ("stop_loss_pct", "take_profit_pct"):
            value = getattr(self, name)
            if value is not None and not 0 < value < (1 if name == "stop_loss_pct" else np.inf):
                raise ValueError(f"{name} must be a positive fraction (0.05 = 5%), not {value}")


NO_EXITS = Exits()


@dataclass(frozen=True)
class Prices:
    """One contiguous stretch of bars as arrays, with what every run on them shares."""

    times: np.ndarray  # open_time of each bar, int64 ns
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    bar_ns: np.int64  # the timeframe's bar length, never guessed from the data

    @classmethod
    def of(cls, bars: pd.DataFrame, bar_length: pd.Timedelta) -> "Prices":
        """Bars ordered by open_time, of one stretch; ``bar_length`` is the timeframe's."""
        if bar_length > pd.Timedelta(days=1):
            raise ValueError(f"Bars must be a day long or shorter, not {bar_length}")
        floats = {name: bars[name].to_numpy(dtype="float64") for name in ("open", "high", "low")}
        return cls(
            times=bars["open_time"].to_numpy(dtype="datetime64[ns]").view("int64"),
            close=bars["close"].to_numpy(dtype="float64"),
            bar_ns=np.int64(bar_length.value),
            **floats,
        )

    def __len__(self) -> int:
        return len(self.times)

    def window(self, start: int, end: int) -> "Prices":
        return Prices(
            self.times[start:end],
            self.open[start:end],
            self.high[start:end],
            self.low[start:end],
            self.close[start:end],
            self.bar_ns,
        )

    @cached_property
    def day_ends(self) -> np.ndarray:
        """Index of each UTC day's last bar."""
        days = self.times // DAY_NS
        return np.flatnonzero(np.append(days[1:] != days[:-1], True))


def positions_from_signal(signal: np.ndarray) -> np.ndarray:
    """The position the signal asks for through each bar: the previous bar's closing signal
    (flat at first)."""
    held = np.zeros(len(signal), dtype=bool)
    held[1:] = np.nan_to_num(signal[:-1], nan=0.0) > 0
    return held


def run(
    prices: Prices, held: np.ndarray, costs: Costs = DEFAULT_COSTS, exits: Exits = NO_EXITS
) -> BacktestResult:
    """Equity and trades of following ``held`` (the position the signal asks for through each
    bar), with the stops, targets and sizing of ``exits``."""
    count = len(prices)
    held = np.asarray(held, dtype=bool)
    changes = np.flatnonzero(np.diff(held, prepend=False))  # flat first: entry, exit, entry ...
    entry_bars, exit_bars = changes[0::2], changes[1::2]
    if len(exit_bars) < len(entry_bars):
        exit_bars = np.append(exit_bars, count)  # still long at the end
    reasons = np.where(exit_bars == count, END_OF_SAMPLE, SIGNAL)
    entry_fill = prices.open[entry_bars] * (1 + costs.slippage)
    exit_level = np.where(
        exit_bars < count,
        prices.open[np.minimum(exit_bars, count - 1)],
        prices.close[count - 1] if count else np.nan,
    )
    if len(entry_bars) and (exits.stop_loss_pct or exits.take_profit_pct):
        _apply_stops(prices, entry_bars, entry_fill, exits, exit_bars, reasons, exit_level)
    exit_fill = exit_level * (1 - costs.slippage)
    # The bar whose close first shows the trade settled in cash.
    settle_bars = np.where(reasons == SIGNAL, exit_bars, np.minimum(exit_bars, count - 1))
    bars_held = settle_bars - entry_bars + (reasons != SIGNAL)
    gross = exit_fill * (1 - costs.fee) / (entry_fill * (1 + costs.fee))
    size = exits.position_size
    after = np.cumprod(1 - size + size * gross)
    before = np.concatenate([[1.0], after[:-1]])
    equity = np.ones(count)
    if len(entry_bars):
        # Bars before the first entry, then each trade's bars (marked at the close) and the
        # cash bars after it: equity = level + scale x close on each piece.
        next_entry = np.append(entry_bars[1:], count)
        lengths = np.column_stack([settle_bars - entry_bars, next_entry - settle_bars]).ravel()
        scale = np.column_stack(
            [before * size / (entry_fill * (1 + costs.fee)), np.zeros(len(entry_bars))]
        ).ravel()
        level = np.column_stack([before * (1 - size), after]).ravel()
        head = entry_bars[0]
        equity[head:] = np.repeat(level, lengths) + np.repeat(scale, lengths) * prices.close[head:]
    times = prices.times
    last_bar = np.minimum(exit_bars, count - 1)
    exit_times = times[last_bar] + np.where(reasons == END_OF_SAMPLE, prices.bar_ns, 0)
    result = BacktestResult(
        times=times,
        equity_values=equity,
        trade_arrays={
            "entry_time": times[entry_bars],
            "entry_price": entry_fill,
            "exit_time": exit_times,
            "exit_price": exit_fill,
            "trade_return": gross - 1,
            "exit_reason": reasons,
            "bars_held": bars_held,
            "profit": before * size * (gross - 1),  # in units of the starting equity
        },
        exposure=float(bars_held.sum() / count) if count else 0.0,
        bar_ns=prices.bar_ns,
        day_ends=prices.day_ends,
    )
    result.metrics = metrics(result)
    return result


def _apply_stops(
    prices: Prices,
    entry_bars: np.ndarray,
    entry_fill: np.ndarray,
    exits: Exits,
    exit_bars: np.ndarray,
    reasons: np.ndarray,
    exit_level: np.ndarray,
) -> None:
    """Moves each trade's exit to the first bar (from its entry bar on) whose low reaches the
    stop or whose high reaches the target, in place."""
    count = len(prices)
    # Each bar's stop and target: the trade's while it is held, unreachable between trades.
    lengths = np.column_stack(
        [entry_bars - np.concatenate([[0], exit_bars[:-1]]), exit_bars - entry_bars]
    ).ravel()
    lengths = np.append(lengths, count - exit_bars[-1])
    touched = np.zeros(count, dtype=bool)
    stop = target = None
    if exits.stop_loss_pct:
        stop = entry_fill * (1 - exits.stop_loss_pct)
        levels = np.append(np.column_stack([np.full(len(stop), -np.inf), stop]).ravel(), -np.inf)
        touched |= prices.low <= np.repeat(levels, lengths)
    if exits.take_profit_pct:
        target = entry_fill * (1 + exits.take_profit_pct)
        levels = np.append(np.column_stack([np.full(len(target), np.inf), target]).ravel(), np.inf)
        touched |= prices.high >= np.repeat(levels, lengths)
    hits = np.flatnonzero(touched)
    if not len(hits):
        return
    trade = np.searchsorted(entry_bars, hits, side="right") - 1
    first = np.concatenate([[True], trade[1:] != trade[:-1]])
    bars, hit_trade = hits[first], trade[first]
    opens = prices.open[bars]
    by_stop = prices.low[bars] <= stop[hit_trade] if stop is not None else np.zeros(len(bars), bool)
    exit_bars[hit_trade] = bars
    reasons[hit_trade] = np.where(by_stop, STOP_LOSS, TAKE_PROFIT)
    stop_fill = np.minimum(opens, stop[hit_trade]) if stop is not None else 0.0
    target_fill = np.maximum(opens, target[hit_trade]) if target is not None else 0.0
    exit_level[hit_trade] = np.where(by_stop, stop_fill, target_fill)
