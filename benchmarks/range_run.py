"""Benchmark: a year of 1m klines through REST, as `make backfill` runs it, vs the bare download.

Starts the Binance stand-in in its own process (N synthetic days ending yesterday UTC; the
archive turned off, BINANCE_ARCHIVE_URL empty), then measures, each in a fresh child process:
  1. the floor: every page fetched through the REST client and dropped;
  2. the figure: `dagster asset materialize --partition-range` over the three assets with every
     check, with a persistent DAGSTER_HOME (deploy/dagster.local.yaml), as `make backfill` runs.
Both are measured --rounds times (default 3), alternating, each figure on a new DAGSTER_HOME and
data folder as a first backfill gets: on a 2-core machine the stand-in shares the cores, and one
bare download varied from 1.8 s to 3.1 s between runs. Prints every round, the medians and their
ratio (target: at most 5x, peak RSS under 512 MiB), the warehouse row count and the load
average. With --profile FILE one round's figure runs under py-spy (raw collapsed stacks, idle
samples included; slower, so its time is not the figure to quote), for
benchmarks/profile_breakdown.py to summarise.

    .venv/bin/python benchmarks/range_run.py --days 365 [--rounds 3] [--profile FILE]
"""

import argparse
import os
import statistics
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
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", help="record the figure's run with py-spy into this file")
    args = parser.parse_args()
    rounds = 1 if args.profile else args.rounds
    last = date.today() - timedelta(days=1)
    first = last - timedelta(days=args.days - 1)
    print(f"load average before: {load_average()}")
    downloads, runs, peaks = [], [], []
    with standin("--synthetic-days", str(args.days)) as url:
        for number in range(1, rounds + 1):
            with tempfile.TemporaryDirectory() as home:
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
                        "select count(*), count(distinct open_time)"
                        " from cryptodb.cryptoschema.btcusdt"
                    ).fetchone()
            print(
                f"round {number}: floor {download_s:.1f} s, figure {run_s:.1f} s"
                f" ({run_s / download_s:.1f}x), peak RSS {run_mib:.0f} MiB,"
                f" warehouse rows {loaded[0]} (distinct open_time {loaded[1]})"
            )
            downloads.append(download_s)
            runs.append(run_s)
            peaks.append(run_mib)
            if loaded[0] != int(rows) or loaded[1] != loaded[0]:
                sys.exit(f"the warehouse holds {loaded[0]} rows, not the {rows.strip()} fetched")
    download_s, run_s = statistics.median(downloads), statistics.median(runs)
    ratio = run_s / download_s
    print(f"days {args.days} ({first}..{last}), candles downloaded {rows.strip()}")
    print(
        f"floor  (bare REST download): median {download_s:.1f} s of {rounds}, peak RSS"
        f" {download_mib:.0f} MiB"
    )
    print(
        f"figure (make backfill run):  median {run_s:.1f} s of {rounds}, peak RSS"
        f" {max(peaks):.0f} MiB"
    )
    print(f"ratio run/download: {ratio:.1f}x (target <= 5x); {int(rows) / run_s:,.0f} rows/s")
    print(f"load average after: {load_average()}")
    if ratio > 5 or max(peaks) >= 512:
        sys.exit("target missed")


if __name__ == "__main__":
    main()
