"""Benchmark: seconds from a 1m candle's close until it is queryable in the warehouse.

Runs the real stack the way a user does: `dagster dev` (webserver + daemon) on loopback with the
fresh-data sensor turned on, against the Binance stand-in serving synthetic candles in real time.
Polls `cryptodb.cryptoschema.btcusdt` every second and records, for each candle that closes
after the sensor started, how long after its close it first appears.

    .venv/bin/python benchmarks/freshness_latency.py --candles 10
"""

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the stand-in lives in the test package, which is not installed

from harness import BIN, free_port, newest_open_time_ms, wait_for  # noqa: E402

from crypto_assets_tests.binance_standin import BinanceStandIn, synthetic_klines  # noqa: E402

DAY_MS = 86_400_000
MINUTE_MS = 60_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candles", type=int, default=10)
    parser.add_argument("--timeout-minutes", type=float, default=30)
    args = parser.parse_args()

    now_ms = int(time.time() * 1000)
    today = now_ms - now_ms % DAY_MS
    klines = {("BTCUSDT", "1m"): synthetic_klines("1m", today - DAY_MS, today + 2 * DAY_MS)}
    work = Path(tempfile.mkdtemp(prefix="freshness-"))
    dagster_home = work / "dagster_home"
    dagster_home.mkdir()
    shutil.copy(ROOT / "deploy" / "dagster.local.yaml", dagster_home / "dagster.yaml")
    port = free_port()
    with BinanceStandIn(klines) as standin:
        env = {
            **os.environ,
            "BINANCE_BASE_URL": standin.url,
            "CRYPTO_ASSETS_HOME": str(work / "data"),
            "DAGSTER_HOME": str(dagster_home),
        }
        dev = subprocess.Popen(
            [
                str(BIN / "dagster"),
                "dev",
                "-m",
                "crypto_assets.definitions",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            wait_for(f"http://127.0.0.1:{port}/server_info", timeout=120)
            subprocess.run(
                [
                    str(BIN / "dagster"),
                    "sensor",
                    "start",
                    "fresh_klines_sensor",
                    "-m",
                    "crypto_assets.definitions",
                ],
                cwd=ROOT,
                env=env,
                check=True,
                capture_output=True,
            )
            started_ms = int(time.time() * 1000)
            print(f"sensor on at {datetime.now(timezone.utc):%H:%M:%S} UTC")
            latencies = measure(work / "data" / "cryptodb.duckdb", started_ms, args)
            if latencies:
                print(
                    f"candles {len(latencies)}: median {statistics.median(latencies):.1f} s,"
                    f" worst {max(latencies):.1f} s",
                    flush=True,
                )
        finally:
            stop(dev)
    shutil.rmtree(work, ignore_errors=True)


def stop(dev: subprocess.Popen) -> None:
    """Ctrl-C, as a user stops `dagster dev`; then the whole process group if it lingers."""
    os.killpg(dev.pid, signal.SIGINT)
    try:
        dev.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(dev.pid, signal.SIGKILL)
        dev.wait()


def measure(database: Path, started_ms: int, args: argparse.Namespace) -> list[float]:
    latencies: list[float] = []
    seen = None
    deadline = time.monotonic() + args.timeout_minutes * 60
    while len(latencies) < args.candles and time.monotonic() < deadline:
        newest = newest_open_time_ms(database)
        now_ms = int(time.time() * 1000)
        if newest is not None and (seen is None or newest > seen):
            first = newest if seen is None else seen + MINUTE_MS
            for open_time in range(first, newest + 1, MINUTE_MS):
                close_ms = open_time + MINUTE_MS
                if close_ms > started_ms:
                    latencies.append((now_ms - close_ms) / 1000)
                    print(
                        f"candle {datetime.fromtimestamp(open_time / 1000, timezone.utc):%H:%M}"
                        f" queryable {latencies[-1]:.1f} s after close",
                        flush=True,
                    )
            seen = newest
        time.sleep(1)
    return latencies


if __name__ == "__main__":
    main()
