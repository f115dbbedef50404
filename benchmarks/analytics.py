"""Benchmark: every analytics asset from scratch over N days of 1m candles in the warehouse, and
the backtest grid over Y years of 1h bars.

1. Fills a temporary warehouse (DuckDB) with N synthetic days of 1m candles through the real
   transform (not timed), then measures, each in a fresh child process:
   - the floor: the three resample queries run straight in DuckDB (no Dagster, no Python work);
   - `crypto-assets analytics` (what `make analytics` runs): one Dagster run of every analytics
     asset, recorded in a persistent DAGSTER_HOME; its wall time and peak RSS, and the seconds of
     each asset family read from the run's step statistics.
2. Times `grid_results` (every strategy x parameter set x sample) on Y years of 1h bars, against
   its floor: the strategies' TA-Lib signals alone.

    .venv/bin/python benchmarks/analytics.py --days 365 --grid-years 8
"""

import argparse
import os
import shutil
import tempfile
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import duckdb
from harness import BIN, ROOT, measured

FAMILIES = {
    "bars": ("btcusdt_bars",),
    "indicators": ("btcusdt_indicators_1h", "btcusdt_indicators_1d"),
    "structure": ("btcusdt_levels", "btcusdt_volume_profile"),
    "backtests": ("btcusdt_backtests",),
    "charts": ("btcusdt_market_charts",),
}

FILL = """
import sys
from pathlib import Path
from crypto_assets_tests.analytics_data import load_base_table
from crypto_assets_tests.conftest import synthetic_days
print(len(load_base_table(Path(sys.argv[1]), synthetic_days(sys.argv[2], int(sys.argv[3])), "1m")))
"""

RESAMPLE_FLOOR = """
import sys, duckdb
from datetime import datetime
from crypto_assets.analytics.bars import bars_rebuild
first, end = datetime.fromisoformat(sys.argv[2]), datetime.fromisoformat(sys.argv[3])
with duckdb.connect(sys.argv[1], config={"memory_limit": "128MB"}) as connection:
    for timeframe in ("1h", "4h", "1d"):
        rebuild = bars_rebuild("cryptoschema.btcusdt", f"floor_{timeframe}", timeframe, "duckdb",
                               first, end, end)
        connection.execute(rebuild.create)
        for statement in rebuild.replace:
            connection.execute(statement)
"""

GRID = """
import sys, time
import pandas as pd
from crypto_assets.analytics import strategies
from crypto_assets.analytics.backtest_grid import grid_results
from crypto_assets_tests.analytics_data import warehouse_candles
from crypto_assets_tests.binance_standin import synthetic_klines
start = int(pd.Timestamp("2017-01-01", tz="UTC").timestamp() * 1000)
years = int(sys.argv[1])
bars = warehouse_candles(synthetic_klines("1h", start, start + years * 365 * 86_400_000), "1h")
close = bars["close"].to_numpy()
grids = strategies.DEFAULT_GRIDS
sets = [(name, params, exits) for name, grid in grids.items()
        for params in strategies.signal_sets(name, grid) for exits in strategies.exit_sets(grid)]
started = time.perf_counter()
for name, grid in grids.items():
    for params in strategies.signal_sets(name, grid):
        strategies.SIGNALS[name](close, **params)
floor = time.perf_counter() - started
started = time.perf_counter()
table = grid_results(bars, "1h", pd.Timedelta(hours=1)).rows
grid = time.perf_counter() - started
print(len(bars), len(sets) + 1, len(table), f"{floor:.2f}", f"{grid:.2f}")
"""


def family_seconds(dagster_home: Path) -> dict[str, float]:
    """Seconds per asset family, from the step statistics of the one run in the instance."""
    os.environ["DAGSTER_HOME"] = str(dagster_home)  # as make sets it; the event log needs it
    with dg.DagsterInstance.get() as instance:
        (run,) = instance.get_runs()
        steps = {
            stat.step_key: stat.end_time - stat.start_time
            for stat in instance.get_run_step_stats(run.run_id)
        }
    return {family: sum(steps.get(key, 0.0) for key in keys) for family, keys in FAMILIES.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--grid-years", type=int, default=8)
    args = parser.parse_args()
    first = date(2023, 1, 1)
    end = first + timedelta(days=args.days)
    python = str(BIN / "python")
    with tempfile.TemporaryDirectory() as work:
        home, dagster_home = Path(work) / "data", Path(work) / "dagster_home"
        home.mkdir()
        dagster_home.mkdir()
        shutil.copy(ROOT / "deploy" / "dagster.local.yaml", dagster_home / "dagster.yaml")
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "CRYPTO_ASSETS_ENV": "local",
            "CRYPTO_ASSETS_HOME": str(home),
            "DAGSTER_HOME": str(dagster_home),
        }
        fill = [python, "-c", FILL, str(home), first.isoformat(), str(args.days)]
        _, _, rows = measured(fill, env)
        floor_s, floor_mib, _ = measured(
            [
                python,
                "-c",
                RESAMPLE_FLOOR,
                str(home / "cryptodb.duckdb"),
                first.isoformat(),
                end.isoformat(),
            ],
            env,
        )
        run_s, run_mib, out = measured([str(BIN / "crypto-assets"), "analytics"], env)
        families = family_seconds(dagster_home)
        with duckdb.connect(str(home / "cryptodb.duckdb"), read_only=True) as connection:
            counts = {
                table: connection.execute(f"select count(*) from cryptoschema.{table}").fetchall()[
                    0
                ][0]
                for table in ("btcusdt_1h", "btcusdt_1d", "btcusdt_backtests")
            }
    _, _, grid = measured([python, "-c", GRID, str(args.grid_years)], env)
    bars, sets, backtests, signals_s, grid_s = grid.split()
    print(f"loadavg before the report: {Path('/proc/loadavg').read_text().strip()}")
    print(f"warehouse: {rows.strip()} 1m candles, {args.days} days from {first}")
    print(f"floor (the resample queries in DuckDB): {floor_s:.1f} s, peak RSS {floor_mib:.0f} MiB")
    print(f"crypto-assets analytics (one Dagster run): {run_s:.1f} s, peak RSS {run_mib:.0f} MiB")
    for family, seconds in families.items():
        print(f"  {family:<11} {seconds:5.1f} s")
    print(f"  tables: {counts}; {out.strip()}")
    print(
        f"grid: {sets} parameter sets x 3 samples + walk-forwards = {backtests} rows"
        f" over {bars} 1h bars"
        f" ({args.grid_years} years): {grid_s} s; floor (signals alone) {signals_s} s"
    )


if __name__ == "__main__":
    main()
