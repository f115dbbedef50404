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

With ``--home DIR`` it measures a warehouse already loaded there instead (e.g. the whole
history kept by ``benchmarks/full_history.py --keep DIR``), over every day it holds; the
analytics tables it writes are dropped first, so every run starts from scratch.

    .venv/bin/python benchmarks/analytics.py --home /work/bench/full --grid-years 0

With ``--profile FILE`` the run goes under py-spy (every thread that is not idle, child
processes too; raw collapsed stacks in FILE) and the seconds sampled in each asset, and in the
warehouse calls inside them, are printed.
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


PROFILE_PARTS = {
    "imports (start-up and in assets)": "_find_and_load",
    "bars": "btcusdt_bars (",
    "indicators": "indicators_asset (",
    "levels": "btcusdt_levels (",
    "volume profile": "btcusdt_volume_profile (",
    "backtests": "btcusdt_backtests (",
    "charts": "btcusdt_market_charts (",
}
INSIDE = {
    "warehouse": ("Warehouse.query (", "Warehouse.query_frame (", "Warehouse.execute ("),
    "replace tables": ("Warehouse.replace_tables (",),
    "imports": ("_find_and_load",),
    "matplotlib": ("matplotlib/",),
    "event log (SQLite)": ("sqlalchemy/",),
}
"""What a sample inside a part was doing, first match wins; anything else is "python"."""


def profile_seconds(raw: Path, rate: int = 100) -> dict[str, float]:
    """Sampled seconds per part of the run (first matching part wins; the rest is Dagster's own
    work: planning, events, step launches), and what each part spent them on."""
    seconds: dict[str, float] = {}
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        part = next((name for name, key in PROFILE_PARTS.items() if key in stack), "dagster")
        seconds[part] = seconds.get(part, 0.0) + int(count) / rate
        if part != "imports (start-up and in assets)":
            inside = next(
                (name for name, keys in INSIDE.items() if any(key in stack for key in keys)),
                "python",
            )
            key = f"{part}: {inside}"
            seconds[key] = seconds.get(key, 0.0) + int(count) / rate
    return dict(sorted(seconds.items()))


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


def loaded_days(database: Path) -> tuple[date, date]:
    """The first day the warehouse holds and the day after its last."""
    with duckdb.connect(str(database), read_only=True) as connection:
        first, last = connection.execute(
            "select cast(min(open_time) as date), cast(max(open_time) as date)"
            " from cryptoschema.btcusdt"
        ).fetchone()
    return first, last + timedelta(days=1)


def drop_analytics_tables(database: Path) -> int:
    """Drops every table but the candles (bars, indicators, ..., the floor's), so the run
    builds them from scratch; returns the candles held."""
    with duckdb.connect(str(database)) as connection:
        tables = connection.execute(
            "select table_schema, table_name from information_schema.tables"
            " where table_name <> 'btcusdt'"
        ).fetchall()
        for schema, table in tables:
            connection.execute(f"drop table {schema}.{table}")
        return connection.execute("select count(*) from cryptoschema.btcusdt").fetchone()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--grid-years", type=int, default=8)
    parser.add_argument("--home", type=Path, help="a loaded CRYPTO_ASSETS_HOME to measure")
    parser.add_argument("--profile", type=Path, help="record the run with py-spy into this file")
    args = parser.parse_args()
    first = date(2023, 1, 1)
    end = first + timedelta(days=args.days)
    python = str(BIN / "python")
    with tempfile.TemporaryDirectory() as work:
        home, dagster_home = Path(work) / "data", Path(work) / "dagster_home"
        if args.home is not None:
            home = args.home
            first, end = loaded_days(home / "cryptodb.duckdb")
            args.days = (end - first).days
        else:
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
        if args.home is None:
            fill = [python, "-c", FILL, str(home), first.isoformat(), str(args.days)]
            _, _, rows = measured(fill, env)
        else:
            rows = str(drop_analytics_tables(home / "cryptodb.duckdb"))
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
        command = [str(BIN / "crypto-assets"), "analytics"]
        if args.profile:
            command = [
                *(str(BIN / "py-spy"), "record", "--subprocesses", "--rate", "100"),
                *("--format", "raw", "--output", str(args.profile), "--", *command),
            ]
        run_s, run_mib, out = measured(command, env)
        families = family_seconds(dagster_home)
        with duckdb.connect(str(home / "cryptodb.duckdb"), read_only=True) as connection:
            counts = {
                table: connection.execute(f"select count(*) from cryptoschema.{table}").fetchall()[
                    0
                ][0]
                for table in ("btcusdt_1h", "btcusdt_1d", "btcusdt_backtests")
            }
    print(f"loadavg before the report: {Path('/proc/loadavg').read_text().strip()}")
    print(f"warehouse: {rows.strip()} 1m candles, {args.days} days from {first}")
    print(f"floor (the resample queries in DuckDB): {floor_s:.1f} s, peak RSS {floor_mib:.0f} MiB")
    print(f"crypto-assets analytics (one Dagster run): {run_s:.1f} s, peak RSS {run_mib:.0f} MiB")
    for family, seconds in families.items():
        print(f"  {family:<11} {seconds:5.1f} s")
    print(f"  tables: {counts}; {out.strip()}")
    if args.profile:
        print("sampled seconds (py-spy, threads not idle):")
        for part, seconds in profile_seconds(args.profile).items():
            print(f"  {part:<32} {seconds:5.1f} s")
    if not args.grid_years:
        return
    _, _, grid = measured([python, "-c", GRID, str(args.grid_years)], env)
    bars, sets, backtests, signals_s, grid_s = grid.split()
    print(
        f"grid: {sets} parameter sets x 3 samples + walk-forwards = {backtests} rows"
        f" over {bars} 1h bars"
        f" ({args.grid_years} years): {grid_s} s; floor (signals alone) {signals_s} s"
    )


if __name__ == "__main__":
    main()
