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
from typing import NamedTuple

import numpy as np
import pandas as pd

from crypto_assets.analytics.backtest_metrics import (
    DAY_NS,
    END_OF_SAMPLE,
    SIGNAL,
    BacktestResult,
    metrics,
    running_peaks,
)
from crypto_assets.analytics.backtest_stops import Reach, apply_stops

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

    @cached_property
    def reach(self) -> Reach:
        """The bars indexed for finding where stops and targets are touched."""
        return Reach.of(self.low, self.high)


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
    return _result(prices, _trades(prices, held, costs, exits), costs, exits)[0]


def run_with_prefix(
    prices: Prices, window: Prices, held: np.ndarray, costs: Costs, exits: Exits
) -> tuple[BacktestResult, BacktestResult]:
    """``run`` on all the bars, and on ``window``: ``prices.window(0, end)``, 0 < end, made once
    by the caller for all its runs.

    A run is causal: on the first bars it is the same run, except that the trade still open at
    bar ``end`` is sold at the close of bar ``end - 1`` and that bar shows the cash. So the
    shorter run is taken from the longer one's equity and running peak, not run again: equal to
    ``run(prices.window(0, end), held[:end], costs, exits)`` to the last bit, and a third of a
    grid's passes over the bars fewer."""
    end = len(window)
    trades = _trades(prices, held, costs, exits)
    full, peaks = _result(prices, trades, costs, exits)
    kept = int(np.searchsorted(trades.entry_bars, end))
    entry_bars, exit_bars = trades.entry_bars[:kept], trades.exit_bars[:kept].copy()
    reasons, exit_level = trades.reasons[:kept].copy(), trades.exit_level[:kept].copy()
    if kept and exit_bars[-1] >= end:
        exit_bars[-1], reasons[-1], exit_level[-1] = end, END_OF_SAMPLE, prices.close[end - 1]
    prefix_trades = _Trades(entry_bars, trades.entry_fill[:kept], exit_bars, reasons, exit_level)
    settled = _settle(window, prefix_trades, costs, exits)
    # The steps that begin before ``end``; the one holding bar end - 1 shows the sold position.
    kept_steps = int(np.searchsorted(full.step_starts, end))
    steps = full.equity_steps[:kept_steps].copy()
    if kept and reasons[-1] == END_OF_SAMPLE:
        steps[-1] = settled.after[-1]
    prefix_peaks = peaks[: kept_steps + 1].copy()
    prefix_peaks[-1] = max(prefix_peaks[-2], steps[-1])
    prefix = _assemble(window, prefix_trades, settled, steps, full.step_starts[:kept_steps], exits)
    prefix.metrics = metrics(prefix, prefix_peaks)
    return full, prefix


class _Trades(NamedTuple):
    """Each round trip's bars and prices before costs; exits are final (stops applied)."""

    entry_bars: np.ndarray
    entry_fill: np.ndarray
    exit_bars: np.ndarray  # the bar a trade is sold in; len(prices) when at the end
    reasons: np.ndarray
    exit_level: np.ndarray  # the sale's price before slippage


class _Settled(NamedTuple):
    exit_fill: np.ndarray
    gross: np.ndarray  # the position's growth, fees and slippage included
    settle_bars: np.ndarray  # the bar whose close first shows the trade settled in cash
    bars_held: np.ndarray
    before: np.ndarray  # equity before each trade, in units of the starting equity
    after: np.ndarray


def _trades(prices: Prices, held: np.ndarray, costs: Costs, exits: Exits) -> _Trades:
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
        apply_stops(
            prices.reach,
            prices.open,
            prices.low,
            entry_bars,
            entry_fill,
            exits.stop_loss_pct,
            exits.take_profit_pct,
            exit_bars,
            reasons,
            exit_level,
        )
    return _Trades(entry_bars, entry_fill, exit_bars, reasons, exit_level)


def _settle(prices: Prices, trades: _Trades, costs: Costs, exits: Exits) -> _Settled:
    count = len(prices)
    entry_bars, exit_bars, reasons = trades.entry_bars, trades.exit_bars, trades.reasons
    exit_fill = trades.exit_level * (1 - costs.slippage)
    settle_bars = np.where(reasons == SIGNAL, exit_bars, np.minimum(exit_bars, count - 1))
    bars_held = settle_bars - entry_bars + (reasons != SIGNAL)
    gross = exit_fill * (1 - costs.fee) / (trades.entry_fill * (1 + costs.fee))
    size = exits.position_size
    after = np.cumprod(1 - size + size * gross)
    before = np.concatenate([[1.0], after[:-1]])
    return _Settled(exit_fill, gross, settle_bars, bars_held, before, after)


def _result(
    prices: Prices, trades: _Trades, costs: Costs, exits: Exits
) -> tuple[BacktestResult, np.ndarray]:
    """The run's result, and the running peak of 1.0 then its equity's steps."""
    settled = _settle(prices, trades, costs, exits)
    steps, starts = _steps(prices, trades, settled, costs, exits)
    result = _assemble(prices, trades, settled, steps, starts, exits)
    peaks = running_peaks(steps)
    result.metrics = metrics(result, peaks)
    return result, peaks


def _steps(
    prices: Prices, trades: _Trades, settled: _Settled, costs: Costs, exits: Exits
) -> tuple[np.ndarray, np.ndarray]:
    """The equity's steps and their first bars: the bars before the first entry, then each
    trade's bars one by one (marked at the close: level + scale x close) and the cash bars after
    it as one step (level + 0 x close)."""
    count, entry_bars = len(prices), trades.entry_bars
    if not len(entry_bars):
        return np.ones(min(count, 1)), np.zeros(min(count, 1), dtype=np.int64)
    size, before, settle_bars = exits.position_size, settled.before, settled.settle_bars
    in_cash = np.zeros(len(entry_bars))
    piece_starts = np.column_stack([entry_bars, settle_bars]).ravel()
    piece_steps = np.column_stack([settle_bars - entry_bars, in_cash + 1]).ravel().astype(np.int64)
    level = np.column_stack([before * (1 - size), settled.after]).ravel()
    scale = np.column_stack([before * size / (trades.entry_fill * (1 + costs.fee)), in_cash])
    scale = scale.ravel()
    if entry_bars[0] > 0:  # flat before the first entry
        piece_starts, piece_steps = np.append(0, piece_starts), np.append(1, piece_steps)
        level, scale = np.append(1.0, level), np.append(0.0, scale)
    firsts = np.cumsum(piece_steps) - piece_steps
    starts = np.arange(firsts[-1] + piece_steps[-1]) + np.repeat(piece_starts - firsts, piece_steps)
    steps = np.repeat(level, piece_steps) + np.repeat(scale, piece_steps) * prices.close[starts]
    return steps, starts


def _assemble(
    prices: Prices,
    trades: _Trades,
    settled: _Settled,
    steps: np.ndarray,
    starts: np.ndarray,
    exits: Exits,
) -> BacktestResult:
    count, times = len(prices), prices.times
    entry_bars, exit_bars, reasons = trades.entry_bars, trades.exit_bars, trades.reasons
    last_bar = np.minimum(exit_bars, count - 1)
    exit_times = times[last_bar] + np.where(reasons == END_OF_SAMPLE, prices.bar_ns, 0)
    gross, bars_held = settled.gross, settled.bars_held
    return BacktestResult(
        times=times,
        equity_steps=steps,
        step_starts=starts,
        trade_arrays={
            "entry_time": times[entry_bars],
            "entry_price": trades.entry_fill,
            "exit_time": exit_times,
            "exit_price": settled.exit_fill,
            "trade_return": gross - 1,
            "exit_reason": reasons,
            "bars_held": bars_held,
            # in units of the starting equity
            "profit": settled.before * exits.position_size * (gross - 1),
        },
        exposure=float(bars_held.sum() / count) if count else 0.0,
        bar_ns=prices.bar_ns,
        day_ends=prices.day_ends,
    )
