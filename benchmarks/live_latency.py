"""Benchmark: the platform live, as a user runs it (`make run`'s entry point, a persistent home).

Starts the Binance stand-in (REST, archive and the kline stream, synthetic candles in real time)
and `crypto-assets platform` against it, then measures:

- the page's lag behind the stream: headless Chromium (3 tabs, the 3 viewers) reads the last
  price's "pushed at" time on the page every 100 ms; each newly shown push's lag is the time
  it was first seen minus the time the stand-in pushed it (median, p95);
- close to queryable: the warehouse is polled every 0.5 s; for each candle closing after the
  start, the seconds from its close until `cryptodb.cryptoschema.btcusdt` returns it; with the
  breakdown of the run that loaded it, read from the Dagster instance;
- the dashboard server's CPU (share of one core) and resident memory while the 3 tabs are open.

    .venv/bin/python benchmarks/live_latency.py --candles 10
    .venv/bin/python benchmarks/live_latency.py --candles 10 --sensor-only --sensor-interval 60

``--sensor-only`` leaves the live loader out (CRYPTO_ASSETS_LIVE_LOADER=0): the old path, where the
fresh-data sensor's queued runs load each candle.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the stand-in lives in the test package, which is not installed

from harness import BIN, free_port, newest_open_time_ms, wait_for  # noqa: E402

from crypto_assets_tests.binance_standin import BinanceStandIn, synthetic_klines  # noqa: E402

DAY_MS, MINUTE_MS = 86_400_000, 60_000
PUSHED = re.compile(r"pushed at (\d\d):(\d\d):(\d\d)\.(\d{3}) UTC")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def watch_page(url: str, viewers: int, stop: threading.Event, lags: list[float]) -> None:
    """3 tabs on the page; the first one's "pushed at" time read every 100 ms."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium")
        pages = [browser.new_page(viewport={"width": 1400, "height": 1000}) for _ in range(viewers)]
        for page in pages:
            page.goto(url)
        pages[0].wait_for_selector("text=pushed at", timeout=180_000)
        shown = None
        while not stop.is_set():
            try:
                text = pages[0].inner_text("[data-testid=stMain]", timeout=2000)
            except Exception:  # a rerun replacing the element; read again
                continue
            seen_at = time.time()
            match = PUSHED.search(text)
            if match and match.group(0) != shown:
                shown = match.group(0)
                hour, minute, second, milli = (int(g) for g in match.groups())
                pushed = datetime.now(timezone.utc).replace(
                    hour=hour, minute=minute, second=second, microsecond=milli * 1000
                )
                lag = seen_at - pushed.timestamp()
                if -1 < lag < 3600:
                    lags.append(lag)
            time.sleep(0.1)
        browser.close()


def run_breakdown(dagster_home: Path, open_time_ms: int) -> dict[str, float] | None:
    """The phases of the run that loaded a candle: close -> created -> started (process up,
    RUN_START) -> warehouse materialized (commit) -> run done, in seconds."""
    import dagster as dg

    os.environ["DAGSTER_HOME"] = str(dagster_home)
    with dg.DagsterInstance.get() as instance:
        day = datetime.fromtimestamp(open_time_ms / 1000, timezone.utc).strftime("%Y-%m-%d")
        close_s = (open_time_ms + MINUTE_MS) / 1000
        records = instance.get_run_records(
            dg.RunsFilter(
                job_name="kline_lineage",
                tags={"dagster/partition": day},
                created_after=datetime.fromtimestamp(close_s, timezone.utc),
            ),
            ascending=True,
            limit=1,
        )
        if not records:
            return None
        record = records[0]
        times: dict[str, float] = {"created": record.create_timestamp.timestamp()}
        for event in instance.get_records_for_run(record.dagster_run.run_id, limit=1000).records:
            entry = event.event_log_entry
            kind = entry.dagster_event_type
            if kind is None:
                continue
            name = kind.name
            if name == "RUN_ENQUEUED":
                times.setdefault("enqueued", entry.timestamp)
            elif name == "RUN_STARTING":
                times.setdefault("dequeued", entry.timestamp)
            elif name == "RUN_START":
                times.setdefault("started", entry.timestamp)
            elif name == "ASSET_MATERIALIZATION" and entry.step_key == "snowflake_btcusdt":
                times.setdefault("committed", entry.timestamp)
            elif name == "RUN_SUCCESS":
                times.setdefault("done", entry.timestamp)
        out = {"trigger": record.dagster_run.tags.get("crypto_assets/trigger", "")}
        out["close_to_created"] = times["created"] - close_s
        queued_from = times.get("enqueued", times["created"])
        out["queue"] = times.get("dequeued", queued_from) - times["created"]
        if "started" not in times or "committed" not in times:
            return None
        out["start_up"] = times["started"] - times.get("dequeued", times["created"])
        out["steps_to_commit"] = times["committed"] - times["started"]
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candles", type=int, default=10)
    parser.add_argument("--viewers", type=int, default=3)
    parser.add_argument("--home", help="persistent CRYPTO_ASSETS_HOME; default a new temp dir")
    parser.add_argument("--sensor-only", action="store_true")
    parser.add_argument("--sensor-interval", type=int, default=60)
    parser.add_argument("--timeout-minutes", type=float, default=30)
    args = parser.parse_args()

    now_ms = int(time.time() * 1000)
    today = now_ms - now_ms % DAY_MS
    klines = {("BTCUSDT", "1m"): synthetic_klines("1m", today - 3 * DAY_MS, today + 2 * DAY_MS)}
    home = Path(args.home or tempfile.mkdtemp(prefix="live-latency-"))
    ui_port, dashboard_port = free_port(), free_port()
    with BinanceStandIn(klines) as standin:
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "BINANCE_BASE_URL": standin.url,
            "BINANCE_ARCHIVE_URL": standin.url,
            "BINANCE_STREAM_URL": standin.stream_url,
            "CRYPTO_ASSETS_HOME": str(home),
            "CRYPTO_ASSETS_BOOTSTRAP_DAYS": "2",
            "CRYPTO_ASSETS_LIVE_LOADER": "0" if args.sensor_only else "1",
            "CRYPTO_ASSETS_SENSOR_INTERVAL_SECONDS": str(args.sensor_interval),
        }
        env.pop("DAGSTER_HOME", None)
        home.mkdir(parents=True, exist_ok=True)
        log = (home / "platform.log").open("wb")
        platform = subprocess.Popen(
            [
                str(BIN / "crypto-assets"),
                "platform",
                "--ui-port",
                str(ui_port),
                "--dashboard-port",
                str(dashboard_port),
            ],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        stop = threading.Event()
        lags: list[float] = []
        try:
            wait_for(f"http://127.0.0.1:{ui_port}/server_info", timeout=180)
            wait_for(f"http://127.0.0.1:{dashboard_port}/healthz", timeout=180)
            dashboard_pid = dashboard_process(home / "platform.log")
            watcher = threading.Thread(
                target=watch_page,
                args=(f"http://127.0.0.1:{dashboard_port}", args.viewers, stop, lags),
                daemon=True,
            )
            watcher.start()
            started_ms = int(time.time() * 1000)
            print(f"platform up at {datetime.now(timezone.utc):%H:%M:%S} UTC, home {home}")
            cpu_start, wall_start = cpu_seconds(dashboard_pid), time.monotonic()
            rss_start = rss_mib(dashboard_pid)
            latencies = measure(home / "cryptodb.duckdb", started_ms, args)
            cpu_share = (cpu_seconds(dashboard_pid) - cpu_start) / (time.monotonic() - wall_start)
            minutes = (time.monotonic() - wall_start) / 60
            rss_end = rss_mib(dashboard_pid)
            print(f"stream connections at the stand-in: {standin.open_streams()}")
        finally:
            stop.set()
            os.kill(platform.pid, signal.SIGTERM)
            platform.wait(timeout=30)
    report(latencies, lags, cpu_share, minutes, rss_start, rss_end, home, args)


def dashboard_process(log: Path) -> int:
    for line in log.read_text(errors="replace").splitlines():
        match = re.search(r"dashboard pid (\d+)", line)
        if match:
            return int(match.group(1))
    sys.exit("the platform did not say its dashboard's pid")


def measure(database: Path, started_ms: int, args: argparse.Namespace) -> dict[int, float]:
    latencies: dict[int, float] = {}
    seen = None
    deadline = time.monotonic() + args.timeout_minutes * 60
    while len(latencies) < args.candles and time.monotonic() < deadline:
        newest = newest_open_time_ms(database)
        now_ms = int(time.time() * 1000)
        if newest is not None and (seen is None or newest > seen):
            first = newest if seen is None else seen + MINUTE_MS
            for open_time in range(first, newest + 1, MINUTE_MS):
                close_ms = open_time + MINUTE_MS
                if close_ms > started_ms + 5000:
                    latencies[open_time] = (now_ms - close_ms) / 1000
                    print(
                        f"candle {datetime.fromtimestamp(open_time / 1000, timezone.utc):%H:%M}"
                        f" queryable {latencies[open_time]:.1f} s after close",
                        flush=True,
                    )
            seen = newest
        time.sleep(0.5)
    return latencies


def report(
    latencies: dict[int, float],
    lags: list[float],
    cpu_share: float,
    minutes: float,
    rss_start: float,
    rss_end: float,
    home: Path,
    args: argparse.Namespace,
) -> None:
    if latencies:
        values = list(latencies.values())
        print(
            f"close to queryable, {len(values)} candles: median {statistics.median(values):.1f} s,"
            f" worst {max(values):.1f} s"
        )
        rows = [run_breakdown(home / "dagster_home", open_time) for open_time in latencies]
        rows = [row for row in rows if row]
        if rows:
            print("phase (median / worst over the runs that loaded them):")
            for phase in ("close_to_created", "queue", "start_up", "steps_to_commit"):
                series = [row[phase] for row in rows]
                print(f"  {phase:18s} {statistics.median(series):5.1f} s / {max(series):5.1f} s")
            print(f"  triggers: {sorted({row['trigger'] for row in rows})}")
    if lags:
        print(
            f"page lag behind the stream, {len(lags)} pushes shown: median"
            f" {statistics.median(lags):.2f} s, p95 {percentile(lags, 0.95):.2f} s,"
            f" worst {max(lags):.2f} s"
        )
    print(
        f"dashboard server with {args.viewers} viewers over {minutes:.1f} min:"
        f" CPU {cpu_share:.0%} of one core, RSS {rss_start:.0f} -> {rss_end:.0f} MiB"
    )


if __name__ == "__main__":
    main()
