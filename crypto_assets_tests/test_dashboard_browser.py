"""The real page in a real browser: ``crypto-assets dashboard`` started as a process on
127.0.0.1, driven by Debian's headless Chromium through playwright. The chart must be drawn,
the last close must be the warehouse's, and a day loaded while the page is open must appear
on its own, without a reload. Screenshots land in artifacts/screenshots/dashboard-*.png."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import expect

from crypto_assets.klines.frames import day_start_ms
from crypto_assets_tests import dashboard_warehouse as fixture_tables
from crypto_assets_tests.binance_standin import BinanceStandIn
from crypto_assets_tests.browser import CHROMIUM, CHROMIUM_ABSENT, ROOT, chromium, dashboard_server
from crypto_assets_tests.conftest import synthetic_days

SCREENSHOTS = ROOT / "artifacts" / "screenshots"
REFRESH_SECONDS = 2
LOAD_DAY = (
    "import sys; from pathlib import Path;"
    " from crypto_assets_tests.dashboard_warehouse import load_days;"
    " sys.exit(0 if load_days(Path(sys.argv[1]), sys.argv[2], '2024-01-04').success else 1)"
)

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=CHROMIUM_ABSENT)


@dataclass
class Dashboard:
    url: str
    home: Path
    standin: BinanceStandIn
    rows: list[list]


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    """Three days of candles and the analytics tables, served by ``crypto-assets dashboard``;
    the stand-in also has a fourth day, for the test that loads it while the page is open."""
    home = tmp_path_factory.mktemp("dashboard_home")
    rows = synthetic_days("2024-01-01", 4)
    standin = BinanceStandIn(
        {("BTCUSDT", "1m"): rows}, clock_ms=lambda: day_start_ms("2024-01-05") + 30_000
    )
    with standin:
        assert fixture_tables.load_days(home, standin.url, "2024-01-01", "2024-01-03").success
        database = home / "cryptodb.duckdb"
        fixture_tables.write_tables(
            database, fixture_tables.analytics_tables(fixture_tables.read_base(database))
        )
        settings = {
            "CRYPTO_ASSETS_HOME": str(home),
            "CRYPTO_ASSETS_DASHBOARD_REFRESH_SECONDS": str(REFRESH_SECONDS),
        }
        with dashboard_server(settings, home / "dashboard.log") as url:
            yield Dashboard(url=url, home=home, standin=standin, rows=rows)


@pytest.fixture(scope="module")
def browser(dashboard: Dashboard):
    with chromium() as opened:
        yield opened


@pytest.fixture
def page(browser, dashboard: Dashboard):
    page = browser.new_page(viewport={"width": 1500, "height": 1300})
    page.goto(dashboard.url)
    yield page
    page.close()


def metric(page, label: str):
    """The value of the header metric labelled ``label`` (the page reruns every 2 s, so
    assertions on it go through playwright's retrying expect)."""
    return (
        page.locator('[data-testid="stMetric"]')
        .filter(has_text=label)
        .locator('[data-testid="stMetricValue"]')
    )


def chart_traces(page) -> list[list]:
    """Each trace of the market chart as [type, number of points], as Plotly drew it."""
    page.wait_for_selector(".js-plotly-plot .main-svg", timeout=30_000)
    return page.evaluate(
        """() => Array.from(document.querySelector('.js-plotly-plot')._fullData,
                            trace => [trace.type, trace._length])"""
    )


def test_market_page_draws_the_chart_and_the_warehouse_close(page, dashboard):
    last = fixture_tables.read_base(dashboard.home / "cryptodb.duckdb")["close"].iloc[-1]
    expect(metric(page, "Last close")).to_have_text(f"{last:,.2f}", timeout=30_000)
    traces = chart_traces(page)
    assert traces[0] == ["candlestick", 288]  # the last 7 days hold 3 days: 288 candles of 15m
    assert ["bar", 24] in traces  # the volume profile's 24 bins
    assert page.locator(".js-plotly-plot g.trace").count() >= 5
    assert "Traceback" not in page.content()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "dashboard-market.png"), full_page=True)
    for tab, shown in (("Strategies", "Sample"), ("Data health", "Freshness of the newest")):
        page.get_by_role("tab", name=tab).click()
        page.get_by_text(shown).first.wait_for(state="visible", timeout=30_000)
        name = tab.lower().replace(" ", "-")
        page.screenshot(path=str(SCREENSHOTS / f"dashboard-{name}.png"), full_page=True)


def test_a_day_loaded_while_the_page_is_open_appears_without_a_reload(page, dashboard):
    expect(metric(page, "Open time (UTC)")).to_have_text("2024-01-03 23:59", timeout=30_000)
    before = metric(page, "Last close").inner_text()
    page.evaluate("() => { window.notReloaded = true; }")
    # In its own process, as a sensor's run would be.
    load = subprocess.run(
        [sys.executable, "-c", LOAD_DAY, str(dashboard.home), dashboard.standin.url],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert load.returncode == 0, load.stderr[-3000:]
    newest = f"{float(dashboard.rows[-1][4]):,.2f}"
    assert newest != before
    expect(metric(page, "Last close")).to_have_text(newest, timeout=30_000)
    expect(metric(page, "Open time (UTC)")).to_have_text("2024-01-04 23:59")
    assert page.evaluate("() => window.notReloaded === true")
    page.screenshot(path=str(SCREENSHOTS / "dashboard-live.png"), full_page=True)
