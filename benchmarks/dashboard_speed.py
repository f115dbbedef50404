"""Benchmark: the market dashboard over a year of 1m candles, measured in a real browser.

Serves ``crypto-assets dashboard`` as a process (the way users run it) over a warehouse holding
a year of 1m candles and the analytics tables, opens it in Debian's headless Chromium through
playwright and prints:
  1. time to first chart: from opening the page to the candlestick chart drawn (cold: the
     server's first visitor; warm: a second visitor within the cache's 30 s);
  2. time to switch timeframe: from picking 1h, 1m and 4h in the sidebar to the new chart;
  3. the floors: Streamlit's empty page shell (the sidebar drawn) in the same visit, and the
     same reads through the dashboard's query layer alone, without the page.

    .venv/bin/python benchmarks/dashboard_speed.py            # a synthetic year, in a temp folder
    .venv/bin/python benchmarks/dashboard_speed.py --home data # your own warehouse (make backfill)

The synthetic year is written straight into DuckDB (a random walk, 525,600 candles with the base
table's columns); the analytics tables come from the test fixture's pandas code.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import timedelta
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness import free_port  # noqa: E402

from crypto_assets.dashboard.connection import DuckDBWarehouse  # noqa: E402
from crypto_assets.dashboard.queries import MarketQueries  # noqa: E402
from crypto_assets_tests import dashboard_warehouse  # noqa: E402
from crypto_assets_tests.browser import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

SYNTHETIC_YEAR = """
CREATE SCHEMA IF NOT EXISTS cryptoschema;
CREATE OR REPLACE TABLE cryptoschema.btcusdt AS
WITH minutes AS (
    SELECT TIMESTAMP '2024-01-01' + INTERVAL (i) MINUTE AS open_time,
           60000 + 2000 * sin(i / 9000.0) + 300 * sin(i / 170.0) AS mid,
           random() AS r1, random() AS r2, random() AS r3
    FROM range(525600) AS t(i)
)
SELECT open_time, 'BTCUSDT' AS symbol, '1m' AS "interval",
       mid AS open, mid + 20 + 30 * r1 AS high, mid - 20 - 30 * r2 AS low,
       mid + 40 * (r3 - 0.5) AS close, 5 + 20 * r1 AS volume,
       open_time + INTERVAL 59999 MILLISECOND AS close_time,
       (5 + 20 * r1) * mid AS quote_asset_volume, CAST(100 + 400 * r2 AS BIGINT) AS num_trades,
       (5 + 20 * r1) * (0.3 + 0.4 * r3) AS taker_base_vol,
       (5 + 20 * r1) * (0.3 + 0.4 * r3) * mid AS taker_quote_vol
FROM minutes;
"""
CANDLE_LENGTH = """() => {
    const plot = document.querySelector('.js-plotly-plot');
    const trace = plot && plot._fullData && plot._fullData[0];
    return trace && trace.type === 'candlestick' ? trace._length : null;
}"""


def build_year(home: Path) -> None:
    database = home / "cryptodb.duckdb"
    with duckdb.connect(str(database)) as connection:
        connection.execute(SYNTHETIC_YEAR)
    base = dashboard_warehouse.read_base(database)
    dashboard_warehouse.write_tables(database, dashboard_warehouse.analytics_tables(base))


def start_dashboard(home: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "CRYPTO_ASSETS_HOME": str(home), "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen(
        [sys.executable, "-m", "crypto_assets.cli", "dashboard", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health") as answer:
                if answer.read() == b"ok":
                    return server
        except OSError:
            time.sleep(0.1)
    sys.exit("the dashboard did not start in 60 s")


def first_chart(browser, url: str) -> tuple[float, float, int, object]:
    """Seconds to Streamlit's empty page shell (the sidebar), to the chart, and the chart's
    candle count."""
    page = browser.new_page(viewport={"width": 1500, "height": 1300})
    started = time.perf_counter()
    page.goto(url)
    page.wait_for_selector('[data-testid="stSidebar"]', timeout=60_000)
    shell = time.perf_counter() - started
    length = page.wait_for_function(CANDLE_LENGTH, timeout=60_000).json_value()
    return shell, time.perf_counter() - started, length, page


def switch_timeframe(page, timeframe: str) -> tuple[float, int]:
    before = page.evaluate(CANDLE_LENGTH)
    page.locator('[data-testid="stSelectbox"]').filter(has_text="Timeframe").click()
    started = time.perf_counter()
    page.get_by_role("option", name=timeframe, exact=True).click()
    length = page.wait_for_function(
        f"() => {{ const n = ({CANDLE_LENGTH})(); return n && n !== {before} ? n : null; }}",
        timeout=60_000,
    ).json_value()
    return time.perf_counter() - started, length


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", help="CRYPTO_ASSETS_HOME with a warehouse; default: build one")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as scratch:
        home = Path(args.home or scratch).resolve()
        if not args.home:
            started = time.perf_counter()
            build_year(home)
            print(f"built a synthetic year in {time.perf_counter() - started:.1f} s")
        queries = MarketQueries(DuckDBWarehouse(home / "cryptodb.duckdb"), "btcusdt")
        with queries.warehouse.session() as session:
            quote = queries.quote(session)
        print(f"warehouse: {quote.candles:,} candles, {quote.first_open_time} .. {quote.open_time}")
        server = start_dashboard(home, free_port())
        port = server.args[-1]
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                shell, cold, length, page = first_chart(browser, f"http://127.0.0.1:{port}")
                print(
                    f"first chart, cold: {cold:.2f} s ({length} candles of 15m, last 7 days);"
                    f" floor, Streamlit's empty page shell: {shell:.2f} s"
                )
                shell, warm, _, second = first_chart(browser, f"http://127.0.0.1:{port}")
                print(f"first chart, warm: {warm:.2f} s; page shell {shell:.2f} s")
                second.close()
                for timeframe in ("1h", "1m", "4h"):
                    seconds, length = switch_timeframe(page, timeframe)
                    print(f"switch to {timeframe}: {seconds:.2f} s ({length} candles)")
                browser.close()
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
        for timeframe in ("15m", "1h", "1m", "4h"):
            started = time.perf_counter()
            view = queries.read_market(timeframe, lookback=timedelta(days=7))
            print(
                f"floor, query layer alone, {timeframe}: {time.perf_counter() - started:.2f} s"
                f" ({len(view.candles)} candles)"
            )
    print(f"load average: {Path('/proc/loadavg').read_text().strip()}")


if __name__ == "__main__":
    main()
