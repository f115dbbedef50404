"""The strategies, their parameter grids and the walk-forward split.

Each strategy turns bars into a long/flat signal on each bar's close, from TA-Lib indicators
that look only backwards; ``backtest.run`` acts on it at the next bar's open. The grid is run
on the in-sample part (the first 70% of the bars), the best in-sample Sharpe picks each
strategy's parameters, and those are reported on the out-of-sample rest, which starts after the
in-sample part ends.
"""

import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import talib

from crypto_assets.analytics.backtest import (
    DEFAULT_COSTS,
    BacktestResult,
    Costs,
    positions_from_signal,
    run,
)

IN_SAMPLE_SHARE = 0.7
BACKTEST_COLUMNS = (
    "strategy",
    "params",
    "timeframe",
    "sample",
    "start",
    "end",
    "total_return",
    "cagr",
    "sharpe",
    "sortino",
    "max_drawdown",
    "calmar",
    "win_rate",
    "trades",
    "exposure",
    "fee_bps",
    "slippage_bps",
    "selected",
)


def sma_cross(close: np.ndarray, fast: int, slow: int) -> np.ndarray:
    """Long while the fast simple average is above the slow one."""
    return (talib.SMA(close, fast) > talib.SMA(close, slow)).astype(float)


def rsi_reversion(close: np.ndarray, period: int, oversold: float, overbought: float) -> np.ndarray:
    """Buy when RSI falls under ``oversold``, sell when it rises over ``overbought``."""
    rsi = talib.RSI(close, period)
    events = np.where(rsi < oversold, 1.0, np.where(rsi > overbought, 0.0, np.nan))
    return pd.Series(events).ffill().fillna(0.0).to_numpy()


def macd_cross(close: np.ndarray, fast: int, slow: int, signal: int) -> np.ndarray:
    """Long while MACD is above its signal line."""
    macd, macd_signal, _ = talib.MACD(close, fast, slow, signal)
    return (macd > macd_signal).astype(float)


def bollinger_breakout(close: np.ndarray, period: int, deviations: float) -> np.ndarray:
    """Buy a close above the upper band, sell a close under the middle band."""
    upper, middle, _ = talib.BBANDS(close, period, deviations, deviations, talib.MA_Type.SMA)
    events = np.where(close > upper, 1.0, np.where(close < middle, 0.0, np.nan))
    return pd.Series(events).ffill().fillna(0.0).to_numpy()


SIGNALS: dict[str, Callable[..., np.ndarray]] = {
    "sma_cross": sma_cross,
    "rsi_reversion": rsi_reversion,
    "macd_cross": macd_cross,
    "bollinger_breakout": bollinger_breakout,
}
GRIDS: dict[str, dict[str, list]] = {
    "sma_cross": {"fast": [5, 10, 15, 20, 30, 40, 50], "slow": [50, 100, 150, 200]},
    "rsi_reversion": {
        "period": [7, 14, 21, 28],
        "oversold": [20, 25, 30],
        "overbought": [65, 70, 75],
    },
    "macd_cross": {"fast": [8, 12, 16], "slow": [21, 26, 34], "signal": [5, 7, 9]},
    "bollinger_breakout": {"period": [10, 20, 30, 50], "deviations": [1.5, 2.0, 2.5, 3.0]},
}


def parameter_sets(strategy: str) -> Iterator[dict]:
    grid = GRIDS[strategy]
    for values in itertools.product(*grid.values()):
        params = dict(zip(grid, values, strict=True))
        if strategy in ("sma_cross", "macd_cross") and params["fast"] >= params["slow"]:
            continue
        yield params


def params_text(params: dict) -> str:
    return json.dumps(params, sort_keys=True)


@dataclass(frozen=True)
class Sample:
    name: str
    start: int  # first bar, included
    end: int  # last bar, excluded


def samples(bar_count: int, in_sample_share: float = IN_SAMPLE_SHARE) -> list[Sample]:
    """full, in_sample (the first share of bars) and out_of_sample (the bars after it)."""
    split = int(bar_count * in_sample_share)
    return [
        Sample("full", 0, bar_count),
        Sample("in_sample", 0, split),
        Sample("out_of_sample", split, bar_count),
    ]


def held_positions(strategy: str, params: dict, close: np.ndarray) -> np.ndarray:
    """The position through each bar: buy and hold is long from the first bar's open."""
    if strategy == "buy_and_hold":
        return np.ones(len(close), dtype=bool)
    return positions_from_signal(SIGNALS[strategy](close, **params))


def run_sample(
    bars: pd.DataFrame, held: np.ndarray, sample: Sample, costs: Costs
) -> BacktestResult:
    """The backtest of one sample: buy and hold re-enters at the sample's first open; other
    strategies carry the signal of the bar before the sample in."""
    window = bars.iloc[sample.start : sample.end]
    return run(window, held[sample.start : sample.end], costs)


def grid_results(
    bars: pd.DataFrame, timeframe: str, costs: Costs = DEFAULT_COSTS
) -> tuple[pd.DataFrame, dict[tuple[str, str], dict[str, BacktestResult]]]:
    """Every strategy x parameter set x sample as BACKTEST_COLUMNS rows, and the results of
    the selected parameter sets (for their trades and equity)."""
    bars = bars.sort_values("open_time").reset_index(drop=True)
    close = bars["close"].to_numpy(dtype="float64")
    rows, selected_results = [], {}
    windows = samples(len(bars))
    for strategy in ["buy_and_hold", *SIGNALS]:
        candidates = [{}] if strategy == "buy_and_hold" else list(parameter_sets(strategy))
        per_params = {}
        for params in candidates:
            held = held_positions(strategy, params, close)
            per_params[params_text(params)] = {
                sample.name: run_sample(bars, held, sample, costs)
                for sample in windows
                if sample.end > sample.start
            }
        chosen = max(per_params, key=lambda key: _score(per_params[key].get("in_sample")))
        selected_results[(strategy, chosen)] = per_params[chosen]
        for key, results in per_params.items():
            for name, result in results.items():
                rows.append(
                    {
                        "strategy": strategy,
                        "params": key,
                        "timeframe": timeframe,
                        "sample": name,
                        "start": pd.Timestamp(result.times[0]),
                        "end": pd.Timestamp(result.times[-1]) + result.bar_length,
                        **result.metrics,
                        "fee_bps": costs.fee_bps,
                        "slippage_bps": costs.slippage_bps,
                        "selected": key == chosen,
                    }
                )
    return pd.DataFrame(rows, columns=list(BACKTEST_COLUMNS)), selected_results


def _score(result: BacktestResult | None) -> float:
    sharpe = result.metrics.get("sharpe", float("nan")) if result else float("nan")
    return -np.inf if np.isnan(sharpe) else sharpe
