"""The engine's shortcuts give what the plain way gives, to the last bit: the first touch of a
stop or target found by the sparse table is the bar-by-bar scan's, the metrics of the equity's
steps (a cash stretch is one step) are those of every bar, and the in-sample run taken from the
full run is the run on the in-sample bars."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from crypto_assets.analytics.backtest import Costs, Exits, Prices, run, run_with_prefix
from crypto_assets.analytics.backtest_metrics import DAY_NS, BacktestResult, metrics
from crypto_assets.analytics.backtest_stops import Reach, first_at_or_below
from crypto_assets.analytics.strategies import held_positions
from crypto_assets_tests.test_analytics_backtest import random_bars

COSTS = Costs(fee_bps=10, slippage_bps=5)


def scan(low: np.ndarray, start: int, level: float, limit: int) -> int:
    """The first bar from ``start`` whose low is at or below ``level``, one bar at a time."""
    for bar in range(start, limit):
        if low[bar] <= level:
            return bar
    return limit


@pytest.mark.parametrize("count", [1, 2, 7, 64, 65, 1000])
def test_first_touch_is_the_bar_by_bar_scans(count: int) -> None:
    rng = np.random.default_rng(count)
    low = np.round(rng.uniform(90, 110, count), 1)  # ties with the levels happen
    starts = rng.integers(0, count, 300)
    limits = starts + rng.integers(1, count + 1, 300)
    limits = np.minimum(limits, count)
    levels = np.round(rng.uniform(88, 112, 300), 1)
    found = first_at_or_below(Reach.of(low, -low).lows, starts, levels, limits)
    expected = [scan(low, *trade) for trade in zip(starts, levels, limits, strict=True)]
    assert found.tolist() == expected
    assert (found < limits).any() and (found == limits).any()


def test_a_drawdown_runs_from_the_last_close_of_a_held_peak_to_the_first_that_regains_it() -> None:
    times = pd.date_range("2024-01-01", periods=10, freq="D").to_numpy().view("int64")
    none = np.array([])
    trades = {"trade_return": none, "profit": none, "bars_held": none}
    steps = BacktestResult(
        times, np.array([1.1, 1.0, 1.2]), np.array([0, 2, 5]), trades, 0.0, DAY_NS, np.arange(10)
    )
    assert steps.equity_values.tolist() == [1.1, 1.1, 1.0, 1.0, 1.0, 1.2, 1.2, 1.2, 1.2, 1.2]
    every_bar = dataclasses.replace(
        steps, equity_steps=steps.equity_values, step_starts=np.arange(10)
    )
    # Under the 1.1 of 01-02's close until 01-06's close regains it.
    assert metrics(steps)["max_drawdown_days"] == metrics(every_bar)["max_drawdown_days"] == 4.0
    assert str(metrics(steps)) == str(metrics(every_bar))  # NaN where NaN


@pytest.mark.parametrize("exits", [Exits(), Exits(0.03, 0.1, 0.5)])
def test_the_metrics_of_the_steps_are_those_of_every_bar(exits: Exits) -> None:
    bars = random_bars(400)
    bars.loc[150:, ["open", "high", "low", "close"]] *= 3.0  # a new peak held in cash
    prices = Prices.of(bars, pd.Timedelta(days=1))
    held = held_positions("sma_cross", {"fast": 3, "slow": 8}, prices.close)
    result = run(prices, held, COSTS, exits)
    assert len(result.equity_steps) < 0.8 * len(prices)
    every_bar = dataclasses.replace(
        result, equity_steps=result.equity_values, step_starts=np.arange(len(prices))
    )
    assert metrics(every_bar) == result.metrics
    assert result.metrics["max_drawdown_days"] > 0


@pytest.mark.parametrize(
    "exits",
    [Exits(), Exits(0.05, None, 1.0), Exits(0.03, 0.1, 0.5), Exits(None, 0.04, 0.3)],
)
@pytest.mark.parametrize("end", [1, 2, 137, 280, 400])
def test_the_in_sample_run_taken_from_the_full_run_is_the_run_on_its_bars(
    exits: Exits, end: int
) -> None:
    bars = random_bars(400)
    prices = Prices.of(bars, pd.Timedelta(days=1))
    held = held_positions("sma_cross", {"fast": 3, "slow": 8}, prices.close)
    full, prefix = run_with_prefix(prices, prices.window(0, end), held, COSTS, exits)
    alone = run(prices.window(0, end), held[:end], COSTS, exits)
    assert full.metrics == run(prices, held, COSTS, exits).metrics
    assert prefix.equity_values.tobytes() == alone.equity_values.tobytes()
    assert prefix.trade_arrays.keys() == alone.trade_arrays.keys()
    for name, values in alone.trade_arrays.items():
        assert prefix.trade_arrays[name].tobytes() == values.tobytes(), name
    assert prefix.exposure == alone.exposure
    assert str(prefix.metrics) == str(alone.metrics)  # NaN where NaN, every float to the bit
