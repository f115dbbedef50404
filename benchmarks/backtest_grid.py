"""Benchmark: a 1,000-set backtest grid over 70,000 1h bars (about 8 years), every set on the
full stretch, in-sample and out-of-sample, plus the 4-fold walk-forward; against its floor
measured in the same run.

The grid: the default strategies' 100 signal parameter sets (sma_cross 27, rsi_reversion 30,
macd_cross 27, bollinger_breakout 16) x 10 exits (stop-loss none, 3, 5, 10, 15% x take-profit
none, 10%), and buy and hold. The floor is the least any backtest of it must do: each signal set's
TA-Lib indicators once, and one pass over the bars (a cumulative product) for every set and
sample. Wall time is what a user waits; on a shared machine the process's CPU time says what the
grid itself costs.

    .venv/bin/python benchmarks/backtest_grid.py [--bars 70000] [--repeat 3]
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the test package is not installed

from crypto_assets.analytics import strategies
from crypto_assets.analytics.backtest_grid import grid_results, samples
from crypto_assets.analytics.strategies import Grid
from crypto_assets_tests.analytics_data import warehouse_candles
from crypto_assets_tests.binance_standin import synthetic_klines

HOUR_MS = 3_600_000
EXITS = {"stop_loss_pct": [None, 0.03, 0.05, 0.1, 0.15], "take_profit_pct": [None, 0.1]}
GRIDS = {
    "sma_cross": Grid({"fast": [5, 10, 15, 20, 30, 40, 50], "slow": [50, 100, 150, 200]}, **EXITS),
    "rsi_reversion": Grid(
        {"period": [7, 14, 21, 28, 35], "oversold": [25, 30], "overbought": [65, 70, 75]}, **EXITS
    ),
    "macd_cross": Grid({"fast": [8, 12, 16], "slow": [21, 26, 34], "signal": [5, 7, 9]}, **EXITS),
    "bollinger_breakout": Grid(
        {"period": [10, 20, 30, 50], "deviations": [1.5, 2.0, 2.5, 3.0]}, **EXITS
    ),
}
for grid in GRIDS.values():
    grid.position_size[:] = [1.0]


def floor_seconds(bars: pd.DataFrame) -> tuple[float, float]:
    """(wall, CPU) seconds of the floor."""
    close = bars["close"].to_numpy(dtype="float64")
    windows = samples(len(bars))
    started, cpu = time.perf_counter(), time.process_time()
    for name, grid in GRIDS.items():
        exits = strategies.exit_sets(grid)
        for params in strategies.signal_sets(name, grid):
            held = strategies.held_positions(name, params, close)
            for _ in exits:
                for window in windows:
                    np.cumprod(np.where(held[window.start : window.end], 1.0, 1.0))
    return time.perf_counter() - started, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=70_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    start = int(pd.Timestamp("2017-01-01", tz="UTC").timestamp() * 1000)
    bars = warehouse_candles(synthetic_klines("1h", start, start + args.bars * HOUR_MS), "1h")
    sets = sum(
        len(list(strategies.signal_sets(name, grid))) * len(strategies.exit_sets(grid))
        for name, grid in GRIDS.items()
    )
    grid_times, grid_cpu, floor_times, floor_cpu = [], [], [], []
    for _ in range(args.repeat):
        wall, cpu = floor_seconds(bars)
        floor_times.append(wall)
        floor_cpu.append(cpu)
        started, cpu = time.perf_counter(), time.process_time()
        outcome = grid_results(bars, "1h", pd.Timedelta(hours=1), grids=GRIDS)
        grid_times.append(time.perf_counter() - started)
        grid_cpu.append(time.process_time() - cpu)
    rows = outcome.rows
    print(f"loadavg: {Path('/proc/loadavg').read_text().strip()}")
    print(
        f"{len(bars)} 1h bars ({bars['open_time'].iloc[0]:%Y-%m-%d} .. "
        f"{bars['open_time'].iloc[-1]:%Y-%m-%d}), {sets} sets + buy and hold, {len(rows)} rows"
        f" ({(rows['sample'] == 'walk_forward').sum()} walk-forward)"
    )
    print(f"grid: best {min(grid_times):.2f} s of {', '.join(f'{t:.2f}' for t in grid_times)}")
    print(f"grid CPU time: best {min(grid_cpu):.2f} s of {', '.join(f'{t:.2f}' for t in grid_cpu)}")
    print(f"floor: best {min(floor_times):.2f} s of {', '.join(f'{t:.2f}' for t in floor_times)}")
    print(
        f"floor CPU time: best {min(floor_cpu):.2f} s of {', '.join(f'{t:.2f}' for t in floor_cpu)}"
    )


if __name__ == "__main__":
    main()
