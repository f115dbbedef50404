"""The strategies: long/flat signals, their parameter grids with exit and sizing variants.

Each strategy turns bars into a long/flat signal on each bar's close, from TA-Lib indicators
that look only backwards; ``backtest.run`` acts on it at the next bar's open. Which strategies
run, over which grids, is run config of ``btcusdt_backtests`` (``DEFAULT_GRIDS`` when none is
given); a new strategy is a signal function added to ``SIGNALS``.
"""

import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import talib

from crypto_assets.analytics.backtest import Exits, positions_from_signal


def sma_cross(close: np.ndarray, fast: int, slow: int) -> np.ndarray:
    """Long while the fast simple average is above the slow one."""
    return (talib.SMA(close, int(fast)) > talib.SMA(close, int(slow))).astype(float)


def rsi_reversion(close: np.ndarray, period: int, oversold: float, overbought: float) -> np.ndarray:
    """Buy when RSI falls under ``oversold``, sell when it rises over ``overbought``."""
    rsi = talib.RSI(close, int(period))
    events = np.where(rsi < oversold, 1.0, np.where(rsi > overbought, 0.0, np.nan))
    return pd.Series(events).ffill().fillna(0.0).to_numpy()


def macd_cross(close: np.ndarray, fast: int, slow: int, signal: int) -> np.ndarray:
    """Long while MACD is above its signal line."""
    macd, macd_signal, _ = talib.MACD(close, int(fast), int(slow), int(signal))
    return (macd > macd_signal).astype(float)


def bollinger_breakout(close: np.ndarray, period: int, deviations: float) -> np.ndarray:
    """Buy a close above the upper band, sell a close under the middle band."""
    upper, middle, _ = talib.BBANDS(close, int(period), deviations, deviations, talib.MA_Type.SMA)
    events = np.where(close > upper, 1.0, np.where(close < middle, 0.0, np.nan))
    return pd.Series(events).ffill().fillna(0.0).to_numpy()


SIGNALS: dict[str, Callable[..., np.ndarray]] = {
    "sma_cross": sma_cross,
    "rsi_reversion": rsi_reversion,
    "macd_cross": macd_cross,
    "bollinger_breakout": bollinger_breakout,
}
FAST_UNDER_SLOW = ("sma_cross", "macd_cross")  # a fast average over a slower one is no cross


@dataclass(frozen=True)
class Grid:
    """A strategy's signal parameters and the exits and sizes each set is run with."""

    params: dict[str, list[float]]
    stop_loss_pct: list[float | None] = field(default_factory=lambda: [None, 0.05])
    take_profit_pct: list[float | None] = field(default_factory=lambda: [None, 0.1])
    position_size: list[float] = field(default_factory=lambda: [1.0, 0.5])


DEFAULT_GRIDS: dict[str, Grid] = {
    "sma_cross": Grid({"fast": [5, 10, 15, 20, 30, 40, 50], "slow": [50, 100, 150, 200]}),
    "rsi_reversion": Grid(
        {"period": [7, 14, 21, 28], "oversold": [20, 25, 30], "overbought": [65, 70, 75]}
    ),
    "macd_cross": Grid({"fast": [8, 12, 16], "slow": [21, 26, 34], "signal": [5, 7, 9]}),
    "bollinger_breakout": Grid({"period": [10, 20, 30, 50], "deviations": [1.5, 2.0, 2.5, 3.0]}),
}


def _number(value: float) -> float | int:
    """5.0 -> 5: run config hands every value over as a float."""
    return int(value) if float(value).is_integer() else float(value)


def signal_sets(strategy: str, grid: Grid) -> Iterator[dict]:
    """Every signal parameter set of the grid, in grid order."""
    if strategy not in SIGNALS:
        raise ValueError(f"Unknown strategy {strategy!r}; expected one of {tuple(SIGNALS)}")
    for values in itertools.product(*grid.params.values()):
        params = {name: _number(value) for name, value in zip(grid.params, values, strict=True)}
        if strategy in FAST_UNDER_SLOW and params["fast"] >= params["slow"]:
            continue
        yield params


def exit_sets(grid: Grid) -> list[Exits]:
    """Every stop x target x size of the grid."""
    return [
        Exits(stop, target, size)
        for stop, target, size in itertools.product(
            grid.stop_loss_pct, grid.take_profit_pct, grid.position_size
        )
    ]


def params_text(params: dict, exits: Exits | None = None) -> str:
    """The set as JSON text: signal parameters, then its exits and size when it has them."""
    if exits is not None:
        params = {
            **params,
            "stop_loss_pct": exits.stop_loss_pct,
            "take_profit_pct": exits.take_profit_pct,
            "position_size": exits.position_size,
        }
    return json.dumps(params, sort_keys=True)


def held_positions(strategy: str, params: dict, close: np.ndarray) -> np.ndarray:
    """The position the strategy asks for through each bar; buy and hold is long from the first
    bar's open."""
    if strategy == "buy_and_hold":
        return np.ones(len(close), dtype=bool)
    return positions_from_signal(SIGNALS[strategy](close, **params))
