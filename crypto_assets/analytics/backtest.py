"""A small vectorised long/flat backtest engine and its metrics.

Conventions, written down once:

- A strategy's signal on a bar's close (1 long, 0 flat) is acted on at the next bar's open; a
  position is never opened on information the bar's open did not have.
- All in: an entry spends the whole equity, fee included; an exit sells the whole position.
  A buy fills at open x (1 + slippage), a sell at open x (1 - slippage), and each side pays the
  fee on its filled value. A position still open at the end of the sample is sold at the last
  bar's close, with the same slippage and fee.
- Metrics use the equity at each UTC day's last bar (daily equity, starting from 1.0 before the
  first bar): daily returns, 365 periods a year, risk-free rate 0, sample standard deviation
  (ddof 1). Sortino divides by the downside deviation sqrt(mean(min(r, 0)^2)). Max drawdown is the
  deepest fall of equity from its running peak (<= 0); Calmar is CAGR / |max drawdown|; CAGR
  compounds over the sample's calendar length (first open to last bar's end).
"""

import math
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

PERIODS_PER_YEAR = 365
DEFAULT_FEE_BPS = 10.0  # Binance spot's base taker/maker rate, each side
DEFAULT_SLIPPAGE_BPS = 5.0
MAX_COST_BPS = 1_000.0
"""10% a side: far above any exchange's fee or a liquid market's slippage; more is a typo."""
TRADE_COLUMNS = ("entry_time", "entry_price", "exit_time", "exit_price", "trade_return")


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


@dataclass
class BacktestResult:
    """Arrays of one backtest; the pandas views are built only when asked for."""

    times: np.ndarray  # open_time of each bar, datetime64[ns]
    equity_values: np.ndarray  # equity at each bar's close
    trade_arrays: dict[str, np.ndarray]
    exposure: float  # share of bars holding the position
    bar_length: pd.Timedelta
    metrics: dict[str, float | int] = field(default_factory=dict)

    @cached_property
    def equity(self) -> pd.Series:
        return pd.Series(self.equity_values, index=pd.DatetimeIndex(self.times), name="equity")

    @cached_property
    def trades(self) -> pd.DataFrame:
        return pd.DataFrame(self.trade_arrays, columns=list(TRADE_COLUMNS))


def positions_from_signal(signal: np.ndarray) -> np.ndarray:
    """The position held through each bar: the previous bar's closing signal (flat at first)."""
    held = np.zeros(len(signal), dtype=bool)
    held[1:] = np.nan_to_num(signal[:-1], nan=0.0) > 0
    return held


def run(bars: pd.DataFrame, held: np.ndarray, costs: Costs = DEFAULT_COSTS) -> BacktestResult:
    """Equity and trades of holding the position ``held[i]`` through bar i (entered at bar i's
    open when not held through bar i - 1), on bars ordered by open_time."""
    open_ = bars["open"].to_numpy(dtype="float64")
    close = bars["close"].to_numpy(dtype="float64")
    times = bars["open_time"].to_numpy(dtype="datetime64[ns]")
    held = np.asarray(held, dtype=bool)
    previous = np.concatenate([[False], held[:-1]])
    entries = held & ~previous
    exits = ~held & previous
    buy_price = open_ * (1 + costs.slippage)
    sell_price = open_ * (1 - costs.slippage)
    previous_close = np.concatenate([[np.nan], close[:-1]])
    factor = np.ones(len(close))
    hold = held & previous
    factor[hold] = close[hold] / previous_close[hold]
    factor[entries] = close[entries] / (buy_price[entries] * (1 + costs.fee))
    factor[exits] = sell_price[exits] * (1 - costs.fee) / previous_close[exits]
    if len(close) and held[-1]:
        factor[-1] *= (1 - costs.slippage) * (1 - costs.fee)
    bar_length = pd.Timedelta(times[1] - times[0]) if len(times) > 1 else pd.Timedelta(days=1)
    result = BacktestResult(
        times=times,
        equity_values=np.cumprod(factor),
        trade_arrays=_trades(
            times, entries, exits, buy_price, sell_price, close, costs, bar_length
        ),
        exposure=float(held.mean()) if len(held) else 0.0,
        bar_length=bar_length,
    )
    result.metrics = metrics(result)
    return result


def _trades(
    times: np.ndarray,
    entries: np.ndarray,
    exits: np.ndarray,
    buy_price: np.ndarray,
    sell_price: np.ndarray,
    close: np.ndarray,
    costs: Costs,
    bar_length: pd.Timedelta,
) -> dict[str, np.ndarray]:
    """One row per round trip; a position open at the end exits at the last bar's close (its
    exit_time is that bar's end)."""
    entry_at = np.flatnonzero(entries)
    exit_at = np.flatnonzero(exits)
    exit_prices = sell_price[exit_at]
    exit_times = times[exit_at]
    if len(entry_at) > len(exit_at):  # still long at the end: sold at the last close
        exit_prices = np.append(exit_prices, close[-1] * (1 - costs.slippage))
        exit_times = np.append(exit_times, times[-1] + bar_length.to_timedelta64())
    entry_prices = buy_price[entry_at]
    return {
        "entry_time": times[entry_at],
        "entry_price": entry_prices,
        "exit_time": exit_times,
        "exit_price": exit_prices,
        "trade_return": exit_prices * (1 - costs.fee) / (entry_prices * (1 + costs.fee)) - 1,
    }


DAY = np.timedelta64(1, "D")


def daily_values(
    times: np.ndarray, equity: np.ndarray, bar_length: pd.Timedelta
) -> tuple[np.ndarray, np.ndarray]:
    """(days, equity at each UTC day's last bar), preceded by 1.0 on the day before the first."""
    if bar_length > pd.Timedelta(days=1):
        raise ValueError(f"Daily equity needs bars of a day or less, not {bar_length}")
    if not len(times):
        return times.astype("datetime64[D]"), equity
    days = times.astype("datetime64[D]")
    last_of_day = np.append(days[1:] != days[:-1], True)
    return (
        np.concatenate([[days[0] - DAY], days[last_of_day]]),
        np.concatenate([[1.0], equity[last_of_day]]),
    )


def daily_equity(equity: pd.Series, bar_length: pd.Timedelta) -> pd.Series:
    """Equity at each UTC day's last bar, preceded by 1.0 on the day before the first bar."""
    days, values = daily_values(
        equity.index.to_numpy(dtype="datetime64[ns]"), equity.to_numpy(), bar_length
    )
    return pd.Series(values, index=pd.DatetimeIndex(days.astype("datetime64[ns]")))


def drawdown(equity: pd.Series) -> pd.Series:
    return equity / equity.cummax() - 1


def metrics(result: BacktestResult) -> dict[str, float | int]:
    """total_return, cagr, sharpe, sortino, max_drawdown, calmar, win_rate, trades, exposure."""
    equity = result.equity_values
    if not len(equity):
        return {}
    _, daily = daily_values(result.times, equity, result.bar_length)
    returns = daily[1:] / daily[:-1] - 1
    total_return = float(equity[-1] - 1)
    span = result.times[-1] + result.bar_length.to_timedelta64() - result.times[0]
    years = span / np.timedelta64(365, "D")
    cagr = float((1 + total_return) ** (1 / years) - 1) if years > 0 else float("nan")
    std = returns.std(ddof=1) if len(returns) > 1 else float("nan")
    downside = np.sqrt(np.mean(np.minimum(returns, 0) ** 2)) if len(returns) else float("nan")
    annual = np.sqrt(PERIODS_PER_YEAR)
    mean = returns.mean() if len(returns) else float("nan")
    max_drawdown = float((daily / np.maximum.accumulate(daily) - 1).min())
    trade_returns = result.trade_arrays["trade_return"]
    return {
        "total_return": total_return,
        "cagr": cagr,
        "sharpe": float(mean / std * annual) if std > 0 else float("nan"),
        "sortino": float(mean / downside * annual) if downside > 0 else float("nan"),
        "max_drawdown": max_drawdown,
        "calmar": float(cagr / -max_drawdown) if max_drawdown < 0 else float("nan"),
        "win_rate": float((trade_returns > 0).mean()) if len(trade_returns) else float("nan"),
        "trades": len(trade_returns),
        "exposure": result.exposure,
    }
