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
average. With --profile FILE one round's figure runs under py-spy (raw collapsed stacks of the
thread holding the GIL; slower, so its time is not the figure to quote), for
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


def one_round(days: int, first: date, last: date, profile: str | None) -> dict:
    """The floor, then the figure, against a stand-in and a DAGSTER_HOME of their own.

    A stand-in per round: Binance's weight budget is per minute, and three rounds in one minute
    spend more than one backfill does, so the client would pace itself and wait.
    """
    with (
        standin("--synthetic-days", str(days)) as url,
        tempfile.TemporaryDirectory() as home,
    ):
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
        run_s, run_mib, _ = measured(profiled(command, profile) if profile else command, env)
        with duckdb.connect(f"{home}/cryptodb.duckdb", read_only=True) as connection:
            loaded, distinct = connection.execute(
                "select count(*), count(distinct open_time) from cryptodb.cryptoschema.btcusdt"
            ).fetchone()
    if loaded != int(rows) or distinct != loaded:
        sys.exit(f"the warehouse holds {loaded} rows ({distinct} distinct), not the {rows} fetched")
    return {
        "download_s": download_s,
        "download_mib": download_mib,
        "run_s": run_s,
        "run_mib": run_mib,
        "rows": int(rows),
    }


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
    results = []
    for number in range(1, rounds + 1):
        result = one_round(args.days, first, last, args.profile)
        results.append(result)
        print(
            f"round {number}: floor {result['download_s']:.1f} s, figure {result['run_s']:.1f} s"
            f" ({result['run_s'] / result['download_s']:.1f}x), peak RSS"
            f" {result['run_mib']:.0f} MiB; every candle in the warehouse once"
        )
    download_s = statistics.median(result["download_s"] for result in results)
    run_s = statistics.median(result["run_s"] for result in results)
    run_mib = max(result["run_mib"] for result in results)
    rows = results[0]["rows"]
    ratio = run_s / download_s
    print(f"days {args.days} ({first}..{last}), candles downloaded {rows}")
    print(
        f"floor  (bare REST download): median {download_s:.1f} s of {rounds},"
        f" peak RSS {max(result['download_mib'] for result in results):.0f} MiB"
    )
    print(
        f"figure (make backfill run):  median {run_s:.1f} s of {rounds}, peak RSS {run_mib:.0f} MiB"
    )
    print(f"ratio run/download: {ratio:.1f}x (target <= 5x); {rows / run_s:,.0f} rows/s")
    print(f"load average after: {load_average()}")
    if ratio > 5 or run_mib >= 512:
        sys.exit("target missed")


if __name__ == "__main__":
    main()
