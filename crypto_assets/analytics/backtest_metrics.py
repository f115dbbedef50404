"""A backtest's result and its metrics.

Conventions:

- Equity is marked to market at every bar's close. Max drawdown and ``max_drawdown_days`` come
  from that series (1.0 before the first bar). Sharpe and Sortino use daily returns (the equity
  at each UTC day's last bar, 1.0 on the day before the first), 365 periods a year, risk-free
  rate 0, sample standard deviation (ddof 1); Sortino divides by sqrt(mean(min(r, 0)^2)).
  CAGR compounds over the sample's calendar length and, like Calmar (CAGR / |max drawdown|), is
  NaN (NULL) for a sample shorter than 90 days.
"""

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

PERIODS_PER_YEAR = 365
MIN_ANNUALISED_DAYS = 90
EXIT_REASONS = ("signal", "stop_loss", "take_profit", "end_of_sample")
SIGNAL, STOP_LOSS, TAKE_PROFIT, END_OF_SAMPLE = range(4)
TRADE_COLUMNS = (
    "entry_time",
    "entry_price",
    "exit_time",
    "exit_price",
    "trade_return",
    "exit_reason",
    "bars_held",
)
METRIC_NAMES = (
    "total_return",
    "cagr",
    "sharpe",
    "sortino",
    "max_drawdown",
    "max_drawdown_days",
    "calmar",
    "win_rate",
    "trades",
    "exposure",
    "profit_factor",
    "avg_trade_return",
    "avg_bars_held",
    "max_consecutive_losses",
)
DAY_NS = np.int64(86_400 * 10**9)


@dataclass
class BacktestResult:
    """Arrays of one backtest; the pandas views and the equity of every bar are built only when
    asked for.

    The equity is kept as steps: each bar in a position is a step of its own, each stretch of
    bars in cash (where the equity stays put) one step. A grid's metrics then pass over the
    bars in a position, not over every bar."""

    times: np.ndarray  # open_time of each bar, int64 ns
    equity_steps: np.ndarray  # the equity at the close of each step's bars
    step_starts: np.ndarray  # each step's first bar; the first step starts at bar 0
    trade_arrays: dict[str, np.ndarray]
    exposure: float  # share of bars holding a position
    bar_ns: np.int64
    day_ends: np.ndarray
    metrics: dict[str, float | int] = field(default_factory=dict)

    @property
    def start(self) -> pd.Timestamp:
        return pd.Timestamp(self.times[0])

    @property
    def end(self) -> pd.Timestamp:
        return pd.Timestamp(self.times[-1] + self.bar_ns)

    @cached_property
    def step_ends(self) -> np.ndarray:
        """Each step's last bar + 1."""
        return np.append(self.step_starts[1:], len(self.times))

    @cached_property
    def daily_values(self) -> np.ndarray:
        """Equity at each UTC day's last bar, preceded by 1.0 (the day before the first)."""
        steps = np.searchsorted(self.step_starts, self.day_ends, side="right") - 1
        return np.concatenate([[1.0], self.equity_steps[steps]])

    @cached_property
    def equity_values(self) -> np.ndarray:
        """The equity at each bar's close."""
        return np.repeat(self.equity_steps, self.step_ends - self.step_starts)

    @cached_property
    def equity(self) -> pd.Series:
        index = pd.DatetimeIndex(self.times.astype("datetime64[ns]"))
        return pd.Series(self.equity_values, index=index, name="equity")

    @cached_property
    def trades(self) -> pd.DataFrame:
        frame = pd.DataFrame({name: self.trade_arrays[name] for name in TRADE_COLUMNS})
        for name in ("entry_time", "exit_time"):
            frame[name] = frame[name].astype("datetime64[ns]")
        frame["exit_reason"] = np.asarray(EXIT_REASONS, dtype=object)[frame["exit_reason"]]
        return frame


def sharpe_of(returns: np.ndarray) -> float:
    """Annualised Sharpe of daily returns (NaN when it cannot be ranked)."""
    if len(returns) < 2:
        return float("nan")
    std = returns.std(ddof=1)
    return float(returns.mean() / std * np.sqrt(PERIODS_PER_YEAR)) if std > 0 else float("nan")


def drawdown_days(
    times: np.ndarray,
    bar_ns: np.int64,
    values: np.ndarray,
    peak: np.ndarray,
    last_marks: np.ndarray,
) -> float:
    """The longest time under a previous peak, in days: from the close of the peak to the close
    that regains it, or to the sample's end if none does. ``values`` are 1.0 at the first open,
    then the equity of each step; ``peak`` their running maximum; ``last_marks`` the mark each value
    holds through to: 0 for the first open, i for the close of bar i - 1 (a step's last bar)."""
    at_peak = np.flatnonzero(values >= peak)
    # A peak held through a step lasts to its last bar; the next peak begins at its first.
    peaks = last_marks[at_peak]
    ends = np.append(last_marks[at_peak[1:] - 1] + 1, len(times))
    spells = ends - peaks > 1
    spells[-1] = ends[-1] > peaks[-1]  # under water at the end
    if not spells.any():
        return 0.0
    start, end = peaks[spells], ends[spells]
    # values[i] is marked at the first open (i = 0) or at the close of bar i - 1.
    marks_end = times[end - 1] + bar_ns
    marks_start = np.where(start > 0, times[np.maximum(start - 1, 0)] + bar_ns, times[0])
    return float((marks_end - marks_start).max() / DAY_NS)


def running_peaks(steps: np.ndarray) -> np.ndarray:
    """The running maximum of 1.0 (the equity at the first open) then the equity's steps."""
    return np.maximum.accumulate(np.concatenate([[1.0], steps]))


def metrics(result: BacktestResult, peaks: np.ndarray | None = None) -> dict[str, float | int]:
    """METRIC_NAMES of one backtest; ``peaks`` are its ``running_peaks`` when the caller has
    them. A step's bars share one value, so the drawdowns of the steps are those of the bars."""
    steps = result.equity_steps
    if not len(result.times):
        return {}
    daily = result.daily_values
    returns = daily[1:] / daily[:-1] - 1
    total_return = float(steps[-1] - 1)
    span_days = (result.times[-1] + result.bar_ns - result.times[0]) / DAY_NS
    cagr = float("nan")
    if span_days >= MIN_ANNUALISED_DAYS:
        cagr = float((1 + total_return) ** (PERIODS_PER_YEAR / span_days) - 1)
    downside = np.sqrt(np.mean(np.minimum(returns, 0) ** 2)) if len(returns) else 0.0
    annual = np.sqrt(PERIODS_PER_YEAR)
    values = np.concatenate([[1.0], steps])
    peak = running_peaks(steps) if peaks is None else peaks
    max_drawdown = float((values / peak).min() - 1)
    trades = result.trade_arrays
    trade_returns, profit = trades["trade_return"], trades["profit"]
    losses = -profit[profit < 0].sum()
    return {
        "total_return": total_return,
        "cagr": cagr,
        "sharpe": sharpe_of(returns),
        "sortino": float(returns.mean() / downside * annual) if downside > 0 else float("nan"),
        "max_drawdown": max_drawdown,
        "max_drawdown_days": drawdown_days(
            result.times, result.bar_ns, values, peak, np.append(0, result.step_ends)
        ),
        "calmar": float(cagr / -max_drawdown) if max_drawdown < 0 else float("nan"),
        "win_rate": float((trade_returns > 0).mean()) if len(trade_returns) else float("nan"),
        "trades": len(trade_returns),
        "exposure": result.exposure,
        "profit_factor": float(profit[profit > 0].sum() / losses) if losses > 0 else float("nan"),
        "avg_trade_return": float(trade_returns.mean()) if len(trade_returns) else float("nan"),
        "avg_bars_held": float(trades["bars_held"].mean()) if len(trade_returns) else float("nan"),
        "max_consecutive_losses": longest_run(trade_returns < 0),
    }


def longest_run(flags: np.ndarray) -> int:
    """The longest run of True."""
    if not flags.any():
        return 0
    edges = np.diff(np.concatenate([[0], flags.astype(np.int8), [0]]))
    return int((np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)).max())


def daily_equity(result: BacktestResult) -> pd.DataFrame:
    """One row per UTC day: the equity at its last bar and the deepest drawdown of its bars."""
    equity = result.equity_values
    drawdown = equity / np.maximum.accumulate(np.append(1.0, equity))[1:] - 1
    firsts = np.concatenate([[0], result.day_ends[:-1] + 1])
    days = (result.times[result.day_ends] // DAY_NS * DAY_NS).astype("datetime64[ns]")
    return pd.DataFrame(
        {
            "day": days,
            "equity": equity[result.day_ends],
            "drawdown": np.minimum.reduceat(drawdown, firsts),
        }
    )
