"""Benchmark: a year of 1m klines through REST, as `make backfill` runs it, vs the bare download.

Starts the Binance stand-in in its own process (N synthetic days ending yesterday UTC; the
archive turned off, BINANCE_ARCHIVE_URL empty), then measures, each in a fresh child process:
  1. the floor: every page fetched through the REST client and dropped;
  2. the figure: `dagster asset materialize --partition-range` over the three assets with every
     check, with a persistent DAGSTER_HOME (deploy/dagster.local.yaml), as `make backfill` runs.
Prints both with peak RSS, the ratio (target: at most 5x, peak RSS under 512 MiB), the warehouse
row count and the load average. With --profile FILE the figure runs under py-spy (raw collapsed
stacks, idle samples included; slower, so its time is not the figure to quote), for
benchmarks/profile_breakdown.py to summarise.

    .venv/bin/python benchmarks/range_run.py --days 365 [--profile FILE]
"""

import argparse
import os
import sys
import tempfile
from datetime import date, timedelta
from pathlib import Path

import duckdb
from harness import (
    BIN,
    ROOT,
    backfill_command,
    load_average,
    measured,
    persistent_home,
    profiled,
    standin,
)

BARE_DOWNLOAD = """
import sys
from crypto_assets.sources.binance_rest import BinanceKlinesClient, time_range_ms
start, end = time_range_ms(sys.argv[1], sys.argv[2])
pages = BinanceKlinesClient().iter_kline_pages("BTCUSDT", "1m", start, end)
print(sum(len(page) for page in pages))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--profile", help="record the figure's run with py-spy into this file")
    args = parser.parse_args()
    last = date.today() - timedelta(days=1)
    first = last - timedelta(days=args.days - 1)
    print(f"load average before: {load_average()}")
    with standin("--synthetic-days", str(args.days)) as url, tempfile.TemporaryDirectory() as home:
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "BINANCE_BASE_URL": url,
            "BINANCE_ARCHIVE_URL": "",
            **persistent_home(Path(home)),
        }
        end = (last + timedelta(days=1)).isoformat()
        download_s, download_mib, rows = measured(
            [str(BIN / "python"), "-c", BARE_DOWNLOAD, first.isoformat(), end], env
        )
        command = backfill_command(first.isoformat(), last.isoformat())
        run_s, run_mib, _ = measured(
            profiled(command, args.profile) if args.profile else command, env
        )
        with duckdb.connect(f"{home}/cryptodb.duckdb", read_only=True) as connection:
            loaded = connection.execute(
                "select count(*), count(distinct open_time) from cryptodb.cryptoschema.btcusdt"
            ).fetchone()
    ratio = run_s / download_s
    print(f"days {args.days} ({first}..{last}), candles downloaded {rows.strip()}")
    print(f"floor  (bare REST download): {download_s:.1f} s, peak RSS {download_mib:.0f} MiB")
    print(f"figure (make backfill run):  {run_s:.1f} s, peak RSS {run_mib:.0f} MiB")
    print(f"ratio run/download: {ratio:.1f}x (target <= 5x); {int(rows) / run_s:,.0f} rows/s")
    print(f"warehouse rows {loaded[0]}, distinct open_time {loaded[1]}")
    print(f"load average after: {load_average()}")
    if ratio > 5 or run_mib >= 512 or loaded[0] != int(rows) or loaded[1] != loaded[0]:
        sys.exit("target missed")


if __name__ == "__main__":
    main()
