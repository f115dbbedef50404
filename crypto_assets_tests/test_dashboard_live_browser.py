"""The live strip in a real browser, against the stand-in's stream and REST API in real time:
one stream connection however many tabs, the stream down at start (REST-polled candles, and the
page says so), a 429 on the REST fallback (it backs off, and says so), a malformed message."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from crypto_assets_tests.binance_standin import BinanceStandIn, synthetic_klines
from crypto_assets_tests.browser import CHROMIUM, CHROMIUM_ABSENT, chromium, dashboard_server

DAY_MS = 86_400_000
PUSHED = re.compile(r"pushed at (\d\d:\d\d:\d\d\.\d{3}) UTC via (the stream|REST polling)")

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=CHROMIUM_ABSENT)


@pytest.fixture(scope="module")
def standin() -> Iterator[BinanceStandIn]:
    now = int(time.time() * 1000)
    today = now - now % DAY_MS
    klines = {("BTCUSDT", "1m"): synthetic_klines("1m", today - DAY_MS, today + 2 * DAY_MS)}
    with BinanceStandIn(klines, stream_tick_seconds=0.25) as server:
        yield server


@contextmanager
def dashboard(tmp_path: Path, standin: BinanceStandIn) -> Iterator[str]:
    """``crypto-assets dashboard`` over an empty home, pointed at the stand-in."""
    settings = {
        "CRYPTO_ASSETS_HOME": str(tmp_path / "data"),
        "BINANCE_BASE_URL": standin.url,
        "BINANCE_STREAM_URL": standin.stream_url,
        "CRYPTO_ASSETS_DASHBOARD_REFRESH_SECONDS": "2",
    }
    with dashboard_server(settings, tmp_path / "dashboard.log") as url:
        yield url


@contextmanager
def pages(url: str, count: int) -> Iterator[list[Page]]:
    with chromium() as browser:
        opened = []
        for _ in range(count):
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url)
            opened.append(page)
        yield opened


def shown_push(page: Page) -> tuple[str, str] | None:
    match = PUSHED.search(page.inner_text("[data-testid=stMain]"))
    return (match.group(1), match.group(2)) if match else None


def wait_until(what: str, condition: Callable[[], object], timeout: float) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_three_tabs_share_one_stream_connection_and_the_price_moves_without_reload(
    tmp_path: Path, standin: BinanceStandIn
) -> None:
    before = len(standin.stream_connections)
    with dashboard(tmp_path, standin) as url, pages(url, 3) as tabs:
        for tab in tabs:
            expect(tab.get_by_text(PUSHED)).to_be_visible(timeout=60_000)
        assert shown_push(tabs[0])[1] == "the stream"
        assert standin.open_streams() == 1
        assert len(standin.stream_connections) - before == 1
        first = shown_push(tabs[0])
        wait_until("a newer push on the page", lambda: shown_push(tabs[0]) != first, 15)
        expect(tabs[0].locator(".js-plotly-plot").first).to_be_visible(timeout=20_000)


@pytest.mark.faults
def test_malformed_message_is_skipped_and_the_page_keeps_updating(
    tmp_path: Path, standin: BinanceStandIn
) -> None:
    with dashboard(tmp_path, standin) as url, pages(url, 1) as (page,):
        expect(page.get_by_text(PUSHED)).to_be_visible(timeout=60_000)
        assert standin.send_stream_text('{"e":"kline","E":1,"s":"BTCUSDT","k":{"t":"x"}') == 1
        assert standin.send_stream_text("not json at all") == 1
        shown = shown_push(page)
        wait_until(
            "the price to move on after the bad messages", lambda: shown_push(page) != shown, 5
        )
        assert shown_push(page)[1] == "the stream"
        page.get_by_role("tab", name="Data health").click()
        expect(page.get_by_text(re.compile(r"\b2 malformed messages skipped"))).to_be_visible(
            timeout=10_000
        )
        expect(page.get_by_text("Connected since")).to_be_visible()
        expect(page.get_by_text("Repaired over REST")).to_be_visible()
        expect(page.get_by_text(re.compile(r"^0 candles$"))).to_be_visible()  # none was missed


@pytest.mark.faults
def test_stream_down_at_start_polls_rest_and_says_so_then_backs_off_on_429(
    tmp_path: Path, standin: BinanceStandIn
) -> None:
    standin.refuse_streams = True
    try:
        with dashboard(tmp_path, standin) as url, pages(url, 1) as (page,):
            expect(page.get_by_text("The live stream is down").first).to_be_visible(timeout=60_000)
            expect(page.get_by_text(PUSHED)).to_be_visible(timeout=20_000)
            assert shown_push(page)[1] == "REST polling"
            expect(page.locator(".js-plotly-plot").first).to_be_visible(timeout=20_000)
            assert standin.open_streams() == 0
            standin.outage("429", 30)
            expect(page.get_by_text(re.compile("Binance answered 429")).first).to_be_visible(
                timeout=15_000
            )
            served = standin.served_429
            time.sleep(4)
            assert standin.served_429 - served <= 1  # backing off: at most one try in 4 s
            expect(page.locator(".js-plotly-plot").first).to_be_visible(timeout=20_000)
    finally:
        standin.refuse_streams = False
        standin.clear_faults()
