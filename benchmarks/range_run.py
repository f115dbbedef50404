"""Benchmark: a range run over N days of 1m klines vs the bare download of the same data.

Starts the Binance stand-in in its own process (serving N synthetic days ending yesterday UTC),
then measures, each in a fresh child process:
  1. the bare download: every page fetched through the client and dropped;
  2. the range run: `dagster asset materialize --partition-range` over the whole lineage.
Prints wall time and peak RSS of each, the ratio, and the warehouse row count.

    .venv/bin/python benchmarks/range_run.py --days 365
"""

import argparse
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

BARE_DOWNLOAD = """
import sys
from crypto_assets.sources.binance_rest import BinanceKlinesClient, time_range_ms
start, end = time_range_ms(sys.argv[1], sys.argv[2])
pages = BinanceKlinesClient().iter_kline_pages("BTCUSDT", "1m", start, end)
print(sum(len(page) for page in pages))
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def measured(command: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Wall seconds and peak RSS (MiB) of one child process, plus its stdout."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    completed = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if completed.returncode != 0:
        sys.exit(f"{command[:3]} failed:\n{completed.stderr[-4000:]}")
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if peak_kib <= before:
        print("note: peak RSS not above an earlier child's; figure is an upper bound")
    return wall, peak_kib / 1024, completed.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365)
    args = parser.parse_args()
    last = date.today() - timedelta(days=1)
    first = last - timedelta(days=args.days - 1)
    port = free_port()
    standin = subprocess.Popen(
        [
            str(BIN / "python"),
            "-m",
            "crypto_assets_tests.binance_standin",
            "--port",
            str(port),
            "--synthetic-days",
            str(args.days),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        standin.stdout.readline()
        with tempfile.TemporaryDirectory() as home:
            env = {
                **os.environ,
                "BINANCE_BASE_URL": f"http://127.0.0.1:{port}",
                "CRYPTO_ASSETS_HOME": home,
                "DAGSTER_HOME": "",
            }
            end = (last + timedelta(days=1)).isoformat()
            download_s, download_mib, rows = measured(
                [str(BIN / "python"), "-c", BARE_DOWNLOAD, first.isoformat(), end], env
            )
            run_s, run_mib, _ = measured(
                [
                    str(BIN / "dagster"),
                    "asset",
                    "materialize",
                    "-m",
                    "crypto_assets.definitions",
                    "--select",
                    "raw_klines,clean_klines,snowflake_btcusdt",
                    "--partition-range",
                    f"{first.isoformat()}...{last.isoformat()}",
                ],
                env,
            )
            with duckdb.connect(f"{home}/cryptodb.duckdb", read_only=True) as connection:
                loaded = connection.execute(
                    "select count(*), count(distinct open_time) from cryptodb.cryptoschema.btcusdt"
                ).fetchone()
    finally:
        standin.terminate()
        standin.wait()
    print(f"days {args.days} ({first}..{last}), candles downloaded {rows.strip()}")
    print(f"bare download: {download_s:.1f} s, peak RSS {download_mib:.0f} MiB")
    print(f"range run:     {run_s:.1f} s, peak RSS {run_mib:.0f} MiB")
    print(f"ratio run/download: {run_s / download_s:.1f}x")
    print(f"warehouse rows {loaded[0]}, distinct open_time {loaded[1]}")


if __name__ == "__main__":
    main()
