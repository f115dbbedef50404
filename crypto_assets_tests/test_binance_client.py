"""The klines client against the Binance stand-in over real HTTP: paging, limits, retries."""

import csv
import logging

import pytest

from crypto_assets.cli import main as cli_main
from crypto_assets.sources.binance_rest import (
    BinanceError,
    BinanceKlinesClient,
    RetryPolicy,
    UnknownSymbolError,
    WeightPacer,
    get_klines,
)
from crypto_assets.sources.klines_csv import save_klines_to_csv
from crypto_assets_tests.binance_standin import BinanceStandIn, synthetic_klines
from crypto_assets_tests.clocks import FakeClock
from crypto_assets_tests.conftest import utc_ms

JAN_1 = utc_ms("2024-01-01")
QUICK_RETRIES = RetryPolicy(max_attempts=4, backoff_base=0.01, backoff_max=0.05)


def client_for(standin: BinanceStandIn, **kwargs) -> BinanceKlinesClient:
    """A client whose pauses (backoff, Retry-After) go to a fake clock unless one is given."""
    kwargs.setdefault("sleep", FakeClock().sleep)
    return BinanceKlinesClient(base_url=standin.url, retry=QUICK_RETRIES, **kwargs)


def kline_requests(standin: BinanceStandIn) -> list[dict]:
    return [request for request in standin.requests if request["path"] == "/api/v3/klines"]


def test_constructing_the_client_makes_no_request(synthetic_standin):
    client_for(synthetic_standin)
    assert synthetic_standin.requests == []


def test_pages_of_1000_meet_without_duplicate_or_gap(synthetic_standin, synthetic_rows):
    klines = client_for(synthetic_standin).get_klines("BTCUSDT", "1m", "2024-01-01", "2024-01-03")
    assert klines == synthetic_rows[:2880]
    pages = kline_requests(synthetic_standin)
    assert [request["params"]["limit"] for request in pages] == ["1000", "1000", "1000"]
    assert pages[1]["params"]["startTime"] == str(synthetic_rows[999][0] + 1)


def test_the_unclosed_last_candle_is_dropped(synthetic_rows):
    now = JAN_1 + 90 * 60_000 + 30_000  # 01:30:30: the 01:30 candle is still open
    with BinanceStandIn({("BTCUSDT", "1m"): synthetic_rows}, clock_ms=lambda: now) as standin:
        klines = client_for(standin).get_klines("BTCUSDT", "1m", JAN_1, JAN_1 + 86_400_000)
        served = kline_requests(standin)
    assert len(klines) == 90
    assert klines[-1][0] == JAN_1 + 89 * 60_000
    assert all(kline[6] < now for kline in klines)
    assert len(served) == 1


def test_symbol_and_interval_are_validated_before_any_request(synthetic_standin):
    client = client_for(synthetic_standin)
    with pytest.raises(ValueError, match="btc-usdt"):
        client.get_klines("btc-usdt", "1m", JAN_1, JAN_1 + 60_000)
    with pytest.raises(ValueError, match="'2m'"):
        client.get_klines("BTCUSDT", "2m", JAN_1, JAN_1 + 60_000)
    assert synthetic_standin.requests == []


def test_an_unknown_symbol_names_it(synthetic_standin):
    with pytest.raises(UnknownSymbolError, match=r"'DOGEBTCX'.*-1121"):
        client_for(synthetic_standin).get_klines("DOGEBTCX", "1m", JAN_1, JAN_1 + 60_000)


def test_pacing_keeps_under_the_weight_budget_without_429():
    clock = FakeClock(1_700_000_000.0)
    rows = synthetic_klines("1m", JAN_1, JAN_1 + 12_000 * 60_000)
    with BinanceStandIn(
        {("BTCUSDT", "1m"): rows}, weight_limit=12, window_seconds=1.0, wall_clock=clock
    ) as standin:
        pacer = WeightPacer(
            budget=12, window_seconds=1.0, safety_margin=0.0, clock=clock, sleep=clock.sleep
        )
        klines = client_for(standin, pacer=pacer, sleep=clock.sleep).get_klines(
            "BTCUSDT", "1m", JAN_1, rows[-1][0] + 1
        )
    assert len(klines) == 12_000
    assert standin.served_429 == 0 and standin.served_418 == 0
    # /time (1) and 12 pages (2 each) are 25 units: 11 + 12 + 2 over three 1-second windows
    assert clock.sleeps == [1.0, 1.0]
    used = [int(request["weight_used"]) for request in standin.requests]
    assert used == [1, 3, 5, 7, 9, 11, 2, 4, 6, 8, 10, 12, 2]


@pytest.mark.parametrize("fault", ["429", "418", "500", "502", "503", "truncated", "reset"])
def test_transient_failures_are_retried(synthetic_standin, synthetic_rows, fault):
    synthetic_standin.inject(fault)
    klines = client_for(synthetic_standin).get_klines("BTCUSDT", "1m", JAN_1, JAN_1 + 600_000)
    assert klines == synthetic_rows[:10]
    statuses = [request["status"] for request in kline_requests(synthetic_standin)]
    assert len(statuses) == 2 and statuses[-1] == 200


@pytest.mark.parametrize("status", ["429", "418"])
def test_retry_after_is_waited_exactly(synthetic_standin, status):
    clock = FakeClock()
    synthetic_standin.inject(status)  # the stand-in asks for Retry-After: 1
    client_for(synthetic_standin, sleep=clock.sleep).get_klines(
        "BTCUSDT", "1m", JAN_1, JAN_1 + 600_000
    )
    assert clock.sleeps == [1.0]


def test_a_retry_after_beyond_max_retry_after_fails_at_once_without_waiting(synthetic_standin):
    clock = FakeClock()
    synthetic_standin.ban(600)
    client = client_for(synthetic_standin, sleep=clock.sleep)
    with pytest.raises(BinanceError, match=r"418 and asks to wait 600s, longer than the 300s"):
        client.get_klines("BTCUSDT", "1m", JAN_1, JAN_1 + 600_000)
    assert clock.sleeps == []
    assert [request["status"] for request in synthetic_standin.requests] == [418]


def test_a_slow_answer_times_out_and_is_retried(synthetic_standin, synthetic_rows):
    synthetic_standin.inject("slow", delay=1.5)
    client = client_for(synthetic_standin, timeout=0.5)
    assert client.get_klines("BTCUSDT", "1m", JAN_1, JAN_1 + 600_000) == synthetic_rows[:10]


def test_a_body_that_stays_malformed_fails_clearly(synthetic_standin):
    synthetic_standin.inject("malformed", count=10)
    with pytest.raises(BinanceError, match=r"after 4 attempts.*malformed body"):
        client_for(synthetic_standin).get_klines("BTCUSDT", "1m", JAN_1, JAN_1 + 600_000)


def test_api_keys_are_sent_but_never_logged(synthetic_standin, caplog, monkeypatch):
    monkeypatch.setenv("BINANCE_API_KEY", "key-that-must-not-leak")
    monkeypatch.setenv("BINANCE_API_SECRET", "secret-that-must-not-leak")
    synthetic_standin.inject("500")
    with caplog.at_level(logging.DEBUG):
        client = client_for(synthetic_standin)
        client.get_klines("BTCUSDT", "1m", JAN_1, JAN_1 + 600_000)
    assert {request["api_key"] for request in synthetic_standin.requests} == {
        "key-that-must-not-leak"
    }
    assert "must-not-leak" not in caplog.text + repr(client)
    assert "HTTP 500" in caplog.text


def test_module_level_get_klines_uses_binance_base_url(synthetic_standin, monkeypatch):
    monkeypatch.setenv("BINANCE_BASE_URL", synthetic_standin.url)
    klines = get_klines("BTCUSDT", "1m", "2024-01-01T00:00", "2024-01-01T00:05")
    assert [kline[0] for kline in klines] == [JAN_1 + i * 60_000 for i in range(5)]


def test_save_klines_to_csv_writes_the_capstone_file(tmp_path, monkeypatch):
    rows = synthetic_klines("1h", JAN_1, JAN_1 + 3 * 86_400_000)
    with BinanceStandIn({("BTCUSDT", "1h"): rows}) as standin:
        monkeypatch.setenv("BINANCE_BASE_URL", standin.url)
        monkeypatch.chdir(tmp_path)
        path = save_klines_to_csv("BTCUSDT", "1h", start="2024-01-01", end="2024-01-03")
    assert path.name == "BTCUSDT_1h.csv"
    with path.open() as handle:
        table = list(csv.reader(handle))
    assert table[0] == [
        "open_time",
        "open",
        "high",
        "low",
        "close",
        "volume",
        "close_time",
        "quote_asset_volume",
        "num_trades",
        "taker_base_vol",
        "taker_quote_vol",
        "ignore",
        "order_book",
    ]
    assert len(table) == 1 + 48
    assert table[1] == [str(value) for value in rows[0]] + [""]
    assert not list(tmp_path.glob("*.partial"))


def test_a_failed_download_leaves_no_file(tmp_path, synthetic_standin):
    synthetic_standin.inject("500", count=20)
    target = tmp_path / "out.csv"
    with pytest.raises(BinanceError):
        save_klines_to_csv(
            "BTCUSDT",
            "1m",
            "2024-01-01",
            "2024-01-02",
            path=target,
            client=client_for(synthetic_standin),
        )
    assert list(tmp_path.iterdir()) == []


def test_cli_downloads_with_progress(tmp_path, synthetic_standin, capsys):
    out = tmp_path / "jan.csv"
    code = cli_main(
        [
            "klines",
            "BTCUSDT",
            "1m",
            "--start",
            "2024-01-01",
            "--end",
            "2024-01-02",
            "--out",
            str(out),
            "--base-url",
            synthetic_standin.url,
        ]
    )
    captured = capsys.readouterr()
    assert code == 0
    assert "Wrote 1440 klines" in captured.out
    assert "1440/1440" in captured.err
    assert len(out.read_text().splitlines()) == 1441


def test_cli_reports_bad_input_without_a_traceback(capsys):
    assert cli_main(["klines", "BTCUSDT", "7m", "--start", "2024-01-01"]) == 2
    assert "Invalid interval '7m'" in capsys.readouterr().err
