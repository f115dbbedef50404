"""Benchmark: the whole BTCUSDT 1m history from the archive, as `make backfill` loads it.

Starts the Binance stand-in in its own process serving synthetic 1m candles from 2017-08-17
through yesterday over REST and as the archive's daily zips (one URL for both), then measures,
each in a fresh child process:
  1. the floor: every archive day from 2017-08-17 to two days ago fetched, SHA-256 verified
     against its CHECKSUM and unzipped, then dropped;
  2. the figure: `dagster asset materialize --partition-range 2017-08-17...<two days ago>` over
     the three assets with every check, with a persistent DAGSTER_HOME, as `make backfill` runs.
Prints both with peak RSS and rows/s (target: under 5 minutes, peak RSS under 512 MiB), checks
that the warehouse holds every candle once and that every day came from the archive.

    .venv/bin/python benchmarks/full_history.py [--first 2017-08-17] [--keep /work/bench/full]

With ``--keep DIR`` (a folder that does not exist yet) the loaded home stays there, e.g. for
``benchmarks/analytics.py --home DIR``.
"""

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
from harness import BIN, ROOT, backfill_command, load_average, measured, persistent_home, standin

BARE_ARCHIVE = """
import sys
from datetime import date, timedelta
from crypto_assets.sources.binance_archive import BinanceArchiveClient
client = BinanceArchiveClient()
day, last, lines = date.fromisoformat(sys.argv[1]), date.fromisoformat(sys.argv[2]), 0
while day <= last:
    lines += client.fetch_day("BTCUSDT", "1m", day.isoformat()).csv.count(b"\\n")
    day += timedelta(days=1)
print(lines)
"""


def sources_of_raw_days(home: str) -> dict[str, int]:
    """How many raw days came from each source, read from the Parquet files' stored attrs."""
    counts: dict[str, int] = {}
    for path in Path(home, "raw").rglob("*.parquet"):
        metadata = pq.read_schema(path).metadata or {}
        source = json.loads(metadata.get(b"PANDAS_ATTRS", b"{}")).get("source", "none")
        counts[source] = counts.get(source, 0) + 1
    return counts


@contextmanager
def _home(keep: Path | None) -> Iterator[str]:
    """The home to load into: ``keep`` (created, left behind), else a temporary folder."""
    if keep is None:
        with tempfile.TemporaryDirectory() as home:
            yield home
        return
    keep.mkdir(parents=True)
    yield str(keep)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--first", default="2017-08-17")
    parser.add_argument("--keep", type=Path, help="keep the loaded home in this new folder")
    args = parser.parse_args()
    last = date.today() - timedelta(days=2)
    first = date.fromisoformat(args.first)
    print(f"load average before: {load_average()}")
    if args.keep is not None and args.keep.exists():
        sys.exit(f"--keep {args.keep} exists already; name a new folder")
    with (
        standin("--synthetic-from", args.first) as url,
        _home(args.keep) as home,
    ):
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "BINANCE_BASE_URL": url,
            "BINANCE_ARCHIVE_URL": url,
            **persistent_home(Path(home)),
        }
        floor_s, floor_mib, rows = measured(
            [str(BIN / "python"), "-c", BARE_ARCHIVE, first.isoformat(), last.isoformat()], env
        )
        run_s, run_mib, _ = measured(backfill_command(first.isoformat(), last.isoformat()), env)
        with duckdb.connect(f"{home}/cryptodb.duckdb", read_only=True) as connection:
            loaded = connection.execute(
                "select count(*), count(distinct open_time) from cryptodb.cryptoschema.btcusdt"
            ).fetchone()
        sources = sources_of_raw_days(home)
    days = (last - first).days + 1
    candles = int(rows)
    print(f"days {days} ({first}..{last}), candles in the archive {candles:,}")
    print(f"floor  (bare archive fetch+verify): {floor_s:.1f} s, peak RSS {floor_mib:.0f} MiB")
    print(f"figure (make backfill run):         {run_s:.1f} s, peak RSS {run_mib:.0f} MiB")
    print(f"{candles / run_s:,.0f} rows/s; run/floor {run_s / floor_s:.1f}x (target: < 300 s)")
    print(f"warehouse rows {loaded[0]:,}, distinct open_time {loaded[1]:,}")
    print(f"raw days by source {sources}")
    print(f"load average after: {load_average()}")
    if run_s >= 300 or run_mib >= 512 or loaded[0] != candles or loaded[1] != loaded[0]:
        sys.exit("target missed")
    if sources != {"archive": days}:
        sys.exit("not every day came from the archive")


if __name__ == "__main__":
    main()
