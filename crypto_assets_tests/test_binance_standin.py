"""Tests of the Binance stand-in itself, over real HTTP, so client tests can trust it."""

from __future__ import annotations

import http.client
import itertools
import json
import pathlib
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import requests

from crypto_assets_tests.binance_standin import (
    INTERVAL_MS,
    KLINE_FIELDS,
    BinanceStandIn,
    load_klines_csv,
    shared_data_dir,
    synthetic_klines,
)

MINUTE = 60_000
DAY = 86_400_000
BASE = 1_704_067_200_000  # 2024-01-01 00:00 UTC
NOW = BASE + 2 * DAY + 90_000  # 30 s into the candle that opened at BASE + 2 days + 1 minute
CURRENT_OPEN = BASE + 2 * DAY + MINUTE
SYNTHETIC_1M = synthetic_klines("1m", BASE, BASE + 3 * DAY)
SYNTHETIC_1H = synthetic_klines("1h", BASE, BASE + 3 * DAY, seed=11, start_price=2000.0)
WINDOW_START = 29_000_000 * 60.0  # a wall-clock second that starts a 60 s weight window
REAL_1M = "BTCUSDT-1m-2025-08-01_2025-08-10.csv"
REAL_1H = "BTCUSDT-1h-2024-01-01_2024-05-11.csv"
ABSENT = "../shared/data/binance is absent: real klines not available in this clone"
PRICE_TEXT = re.compile(r"^\d+\.\d{8}$")
REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent


class Clock:
    """A settable clock, so a test can place "now" anywhere inside the data."""

    def __init__(self, value: float) -> None:
        self.value = value

    def __call__(self) -> Any:
        return self.value


def get(standin: BinanceStandIn, path: str, **params: Any) -> requests.Response:
    return requests.get(standin.url + path, params=params, timeout=5)


def klines(standin: BinanceStandIn, **params: Any) -> requests.Response:
    params.setdefault("symbol", "BTCUSDT")
    params.setdefault("interval", "1m")
    return get(standin, "/api/v3/klines", **params)


def used(response: requests.Response) -> int:
    return int(response.headers["X-MBX-USED-WEIGHT-1M"])


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def wall() -> Clock:
    return Clock(WINDOW_START + 15.2)


@pytest.fixture
def standin(clock: Clock, wall: Clock) -> Iterator[BinanceStandIn]:
    data = {("BTCUSDT", "1m"): SYNTHETIC_1M, ("ETHUSDT", "1h"): SYNTHETIC_1H}
    with BinanceStandIn(data, clock_ms=clock, wall_clock=wall) as server:
        yield server


@pytest.fixture
def small_budget(wall: Clock) -> Iterator[BinanceStandIn]:
    data = {("BTCUSDT", "1m"): SYNTHETIC_1M}
    with BinanceStandIn(
        data, weight_limit=10, ban_seconds=1.5, clock_ms=Clock(NOW), wall_clock=wall
    ) as server:
        yield server


@pytest.fixture(scope="module")
def real_rows() -> list[list[Any]]:
    path = shared_data_dir() / REAL_1M
    if not path.is_file():
        pytest.skip(ABSENT)
    return load_klines_csv(path)


# ----------------------------------------------------------------------------- basic endpoints


def test_ping_time_and_binance_headers(standin: BinanceStandIn) -> None:
    ping = get(standin, "/api/v3/ping")
    assert ping.status_code == 200
    assert ping.json() == {}
    assert ping.headers["Content-Type"] == "application/json;charset=UTF-8"
    assert used(ping) == 1
    server_time = get(standin, "/api/v3/time")
    assert server_time.json() == {"serverTime": NOW}
    assert used(server_time) == 2


def test_exchange_info_lists_held_symbols_and_weight_limit(standin: BinanceStandIn) -> None:
    info = get(standin, "/api/v3/exchangeInfo")
    assert info.status_code == 200
    body = info.json()
    assert used(info) == 20
    assert body["timezone"] == "UTC"
    assert body["serverTime"] == NOW
    assert body["rateLimits"][0] == {
        "rateLimitType": "REQUEST_WEIGHT",
        "interval": "MINUTE",
        "intervalNum": 1,
        "limit": 6000,
    }
    assert [s["symbol"] for s in body["symbols"]] == ["BTCUSDT", "ETHUSDT"]
    btc = body["symbols"][0]
    assert (btc["status"], btc["baseAsset"], btc["quoteAsset"]) == ("TRADING", "BTC", "USDT")

    one = get(standin, "/api/v3/exchangeInfo", symbol="ETHUSDT").json()
    assert [s["symbol"] for s in one["symbols"]] == ["ETHUSDT"]
    unknown = get(standin, "/api/v3/exchangeInfo", symbol="DOGEUSDT")
    assert unknown.status_code == 400
    assert unknown.json() == {"code": -1121, "msg": "Invalid symbol."}


# ----------------------------------------------------------------------------- klines paging


def test_default_limit_is_500_most_recent_in_rest_shape(standin: BinanceStandIn) -> None:
    response = klines(standin)
    assert response.status_code == 200
    rows = response.json()
    assert len(rows) == 500
    assert rows[-1][0] == CURRENT_OPEN
    assert [r[0] for r in rows] == [CURRENT_OPEN - MINUTE * (499 - i) for i in range(500)]
    first = rows[0]
    assert len(first) == len(KLINE_FIELDS) == 12
    assert [type(v) for v in first] == [int, str, str, str, str, str, int, str, int, str, str, str]
    assert first[-1] == "0"
    assert first == SYNTHETIC_1M[(first[0] - BASE) // MINUTE]


def test_limit_1000_is_the_maximum(standin: BinanceStandIn) -> None:
    assert len(klines(standin, limit=1000).json()) == 1000
    assert len(klines(standin, limit=1).json()) == 1
    for bad in ("1001", "0", "-1", "abc", "", "2.5"):
        response = klines(standin, limit=bad)
        assert response.status_code == 400, bad
        assert response.json() == {
            "code": -1130,
            "msg": "Data sent for parameter 'limit' is not valid.",
        }


def test_start_and_end_selection(standin: BinanceStandIn) -> None:
    start = BASE + 10 * MINUTE
    rows = klines(standin, startTime=start, limit=5).json()
    assert [r[0] for r in rows] == [start + i * MINUTE for i in range(5)]

    rows = klines(standin, startTime=start + 1, limit=2).json()  # between grid points
    assert [r[0] for r in rows] == [start + MINUTE, start + 2 * MINUTE]

    rows = klines(standin, startTime=start, endTime=start + 3 * MINUTE).json()
    assert [r[0] for r in rows] == [start + i * MINUTE for i in range(4)]  # both ends inclusive

    rows = klines(standin, startTime=start, endTime=start + 999 * MINUTE, limit=3).json()
    assert [r[0] for r in rows] == [start, start + MINUTE, start + 2 * MINUTE]

    rows = klines(standin, endTime=start, limit=3).json()  # only endTime: the last `limit`
    assert [r[0] for r in rows] == [start - 2 * MINUTE, start - MINUTE, start]

    assert klines(standin, startTime=start + MINUTE, endTime=start).json() == []
    assert klines(standin, startTime=NOW + MINUTE).json() == []  # the future does not exist yet
    rows = klines(standin, endTime=NOW + DAY, limit=2).json()
    assert [r[0] for r in rows] == [CURRENT_OPEN - MINUTE, CURRENT_OPEN]
    assert klines(standin, startTime=0, limit=1).json()[0][0] == BASE  # earliest candle
    assert klines(standin, symbol="ETHUSDT", interval="1m").json() == []  # no such series held


def test_paging_walk_returns_every_candle_once(standin: BinanceStandIn, clock: Clock) -> None:
    clock.value = BASE + 3 * DAY  # everything closed
    seen: list[list[Any]] = []
    start = 0
    while True:
        page = klines(standin, startTime=start, limit=1000).json()
        if not page:
            break
        seen.extend(page)
        start = page[-1][0] + 1
    assert seen == SYNTHETIC_1M


def test_in_progress_candle_is_served(standin: BinanceStandIn, clock: Clock) -> None:
    last = klines(standin, limit=3).json()[-1]
    assert last[0] == CURRENT_OPEN <= NOW <= last[6]
    full = SYNTHETIC_1M[(CURRENT_OPEN - BASE) // MINUTE]
    # Half way through: only part of the volume has traded yet.
    assert Decimal(last[5]) < Decimal(full[5])
    assert Decimal(last[9]) <= Decimal(last[5])
    assert last[8] <= full[8]
    assert Decimal(last[3]) <= Decimal(last[4]) <= Decimal(last[2])

    clock.value = CURRENT_OPEN + MINUTE  # the candle has closed and the next one just opened
    rows = klines(standin, limit=2).json()
    assert rows[0] == full
    assert rows[1][0] == CURRENT_OPEN + MINUTE and rows[1][6] >= clock.value


def test_in_progress_candle_can_be_served_whole(clock: Clock) -> None:
    data = {("BTCUSDT", "1m"): SYNTHETIC_1M}
    with BinanceStandIn(data, clock_ms=clock, partial_in_progress=False) as server:
        last = klines(server, limit=1).json()[-1]
    assert last == SYNTHETIC_1M[(CURRENT_OPEN - BASE) // MINUTE]


# ----------------------------------------------------------------------------- errors


def test_parameter_errors(standin: BinanceStandIn) -> None:
    cases = [
        (
            {"symbol": "", "interval": "1m"},
            -1102,
            "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.",
        ),
        (
            {"symbol": "BTCUSDT", "interval": ""},
            -1102,
            "Mandatory parameter 'interval' was not sent, was empty/null, or malformed.",
        ),
        ({"symbol": "DOGEUSDT"}, -1121, "Invalid symbol."),
        ({"symbol": "btc usdt"}, -1121, "Invalid symbol."),
        ({"interval": "7m"}, -1120, "Invalid interval."),
        ({"interval": "1H"}, -1120, "Invalid interval."),
    ]
    for params, code, msg in cases:
        response = klines(standin, **params)
        assert response.status_code == 400, params
        assert response.headers["Content-Type"] == "application/json;charset=UTF-8"
        assert response.json() == {"code": code, "msg": msg}

    missing = requests.get(standin.url + "/api/v3/klines", params={"interval": "1m"}, timeout=5)
    assert missing.json()["code"] == -1102
    bad_time = klines(standin, startTime="yesterday")
    assert bad_time.status_code == 400 and bad_time.json()["code"] == -1100
    twice = requests.get(
        standin.url + "/api/v3/klines?symbol=BTCUSDT&symbol=BTCUSDT&interval=1m", timeout=5
    )
    assert twice.status_code == 400 and twice.json()["code"] == -1101


def test_unknown_path_is_binance_html_404(standin: BinanceStandIn) -> None:
    response = get(standin, "/api/v3/nothing")
    assert response.status_code == 404
    assert response.text == "<html><body><h2>404 Not found</h2></body></html>"
    assert "X-MBX-USED-WEIGHT-1M" in response.headers


# ----------------------------------------------------------------------------- request weight


def test_weight_header_counts_two_per_klines_call(standin: BinanceStandIn, wall: Clock) -> None:
    assert [used(klines(standin, limit=1)) for _ in range(3)] == [2, 4, 6]
    assert used(klines(standin, symbol="NOPE")) == 8  # errors cost weight too
    assert standin.used_weight == 8
    wall.value = WINDOW_START + 60.0  # next fixed window
    assert used(klines(standin, limit=1)) == 2
    assert [entry["weight_used"] for entry in standin.requests] == [2, 4, 6, 8, 2]


def test_429_once_over_budget_with_retry_after(small_budget: BinanceStandIn) -> None:
    assert [used(klines(small_budget, limit=1)) for _ in range(5)] == [2, 4, 6, 8, 10]
    refused = klines(small_budget, limit=1)
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "45"  # the window started 15.2 s ago
    assert refused.headers["Content-Type"] == "application/json;charset=UTF-8"
    assert refused.json() == {
        "code": -1003,
        "msg": "Too much request weight used; current limit is 10 request weight per 1 MINUTE. "
        "Please use WebSocket Streams for live updates to avoid polling the API.",
    }
    assert small_budget.served_429 == 1
    assert small_budget.served_418 == 0
    assert small_budget.requests[-1]["status"] == 429


def test_418_ban_after_hammering_then_recovery(small_budget: BinanceStandIn, wall: Clock) -> None:
    statuses = [klines(small_budget, limit=1).status_code for _ in range(8)]
    assert statuses == [200] * 5 + [429, 429, 429]
    banned = klines(small_budget, limit=1)  # third further request after the first 429
    assert banned.status_code == 418
    assert banned.headers["Retry-After"] == "2"  # ban_seconds=1.5 rounded up
    body = banned.json()
    assert body["code"] == -1003
    until = int((wall.value + 1.5) * 1000)
    assert body["msg"] == (
        f"Way too much request weight used; IP banned until {until}. "
        "Please use WebSocket Streams for live updates to avoid bans."
    )
    assert get(small_budget, "/api/v3/ping").status_code == 418  # every endpoint is banned
    assert (small_budget.served_429, small_budget.served_418) == (3, 2)

    wall.value += 1.6  # ban over, same window: still over budget
    assert klines(small_budget, limit=1).status_code == 429
    wall.value = WINDOW_START + 60.0  # fresh window
    fresh = klines(small_budget, limit=1)
    assert fresh.status_code == 200 and used(fresh) == 2


def test_weight_window_follows_the_real_clock() -> None:
    data = {("BTCUSDT", "1m"): SYNTHETIC_1M[:10]}
    with BinanceStandIn(data, weight_limit=4, window_seconds=1.0) as server:
        time.sleep(1.02 - time.time() % 1.0)  # start just after a window boundary
        assert [klines(server).status_code for _ in range(3)] == [200, 200, 429]
        refused = server.requests[-1]
        assert refused["status"] == 429
        time.sleep(1.02 - time.time() % 1.0)
        again = klines(server)
        assert again.status_code == 200 and used(again) == 2
        assert server.served_429 == 1


# ----------------------------------------------------------------------------- injected faults


@pytest.mark.parametrize(
    ("fault", "code", "retry_after"),
    [("429", -1003, "1"), ("418", -1003, "1"), ("500", -1000, None), ("503", -1001, None)],
)
def test_injected_json_errors(
    standin: BinanceStandIn, fault: str, code: int, retry_after: str | None
) -> None:
    standin.inject(fault)
    response = klines(standin, limit=1)
    assert response.status_code == int(fault)
    assert response.json()["code"] == code
    assert response.headers.get("Retry-After") == retry_after
    assert klines(standin, limit=1).status_code == 200  # only the next request
    assert standin.served_429 == (fault == "429")
    assert standin.served_418 == (fault == "418")
    assert [e["fault"] for e in standin.requests] == [fault, None]


def test_injected_502_is_an_html_page(standin: BinanceStandIn) -> None:
    standin.inject("502")
    response = klines(standin)
    assert response.status_code == 502
    assert "502 Bad Gateway" in response.text
    with pytest.raises(requests.exceptions.JSONDecodeError):
        response.json()


def test_injected_truncated_body_breaks_the_read(standin: BinanceStandIn) -> None:
    standin.inject("truncated")
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.ConnectionError)):
        klines(standin, limit=100)
    assert len(klines(standin, limit=100).json()) == 100


def test_injected_malformed_body_is_invalid_json(standin: BinanceStandIn) -> None:
    standin.inject("malformed")
    response = klines(standin, limit=100)
    assert response.status_code == 200
    with pytest.raises(requests.exceptions.JSONDecodeError):
        response.json()
    assert response.text.startswith("[[")


def test_injected_slow_answer(standin: BinanceStandIn) -> None:
    standin.inject("slow", delay=0.4)
    began = time.perf_counter()
    response = klines(standin, limit=3)
    assert time.perf_counter() - began >= 0.4
    assert response.status_code == 200 and len(response.json()) == 3
    standin.inject("slow", delay=2.0)
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(
            standin.url + "/api/v3/klines",
            params={"symbol": "BTCUSDT", "interval": "1m"},
            timeout=0.3,
        )


def test_injected_reset_drops_the_connection(standin: BinanceStandIn) -> None:
    standin.inject("reset")
    with pytest.raises(requests.ConnectionError):
        klines(standin)
    assert klines(standin).status_code == 200
    assert standin.requests[0]["fault"] == "reset"


def test_faults_follow_count_and_path(standin: BinanceStandIn) -> None:
    standin.inject("500", count=2, path="/api/v3/time")
    assert klines(standin, limit=1).status_code == 200
    assert [get(standin, "/api/v3/time").status_code for _ in range(3)] == [500, 500, 200]
    standin.inject("503")
    standin.inject("429")
    assert [klines(standin, limit=1).status_code for _ in range(3)] == [503, 429, 200]
    with pytest.raises(ValueError):
        standin.inject("teapot")


# ----------------------------------------------------------------------------- plumbing


def test_request_log(standin: BinanceStandIn, wall: Clock) -> None:
    klines(standin, startTime=BASE, limit=2)
    (entry,) = standin.requests
    assert entry == {
        "path": "/api/v3/klines",
        "params": {
            "symbol": "BTCUSDT",
            "interval": "1m",
            "startTime": str(BASE),
            "limit": "2",
        },
        "status": 200,
        "weight_used": 2,
        "time": wall.value,
        "fault": None,
        "api_key": None,
    }


def test_keep_alive_and_content_length(standin: BinanceStandIn) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", standin.port, timeout=5)
    try:
        for _ in range(3):
            connection.request("GET", "/api/v3/klines?symbol=BTCUSDT&interval=1m&limit=7")
            response = connection.getresponse()
            body = response.read()
            assert response.status == 200
            assert int(response.headers["Content-Length"]) == len(body)
            assert len(json.loads(body)) == 7
            assert not response.will_close
        assert len(standin.requests) == 3
    finally:
        connection.close()


def test_add_and_replace_klines(standin: BinanceStandIn, clock: Clock) -> None:
    clock.value = BASE + 3 * DAY + 30_000
    new = synthetic_klines("1m", BASE + 3 * DAY, BASE + 3 * DAY + MINUTE, seed=3)
    assert klines(standin, limit=1).json()[0][0] == BASE + 3 * DAY - MINUTE
    standin.add_klines("BTCUSDT", "1m", new)
    assert klines(standin, limit=1).json()[0][0] == BASE + 3 * DAY  # a new candle appeared

    corrupt = list(SYNTHETIC_1M[5])
    corrupt[2] = "1.00000000"  # high below open: a broken candle
    standin.replace_kline("BTCUSDT", "1m", BASE + 5 * MINUTE, corrupt)
    assert klines(standin, startTime=BASE + 5 * MINUTE, limit=1).json() == [corrupt]
    with pytest.raises(KeyError):
        standin.replace_kline("BTCUSDT", "1m", BASE + 1, corrupt)

    standin.add_klines("SOLUSDT", "1m", SYNTHETIC_1M[:3])
    assert len(klines(standin, symbol="SOLUSDT").json()) == 3


def test_stop_closes_the_port(clock: Clock) -> None:
    server = BinanceStandIn({("BTCUSDT", "1m"): SYNTHETIC_1M}, clock_ms=clock).start()
    assert server.url == f"http://127.0.0.1:{server.port}"
    session = requests.Session()
    assert session.get(server.url + "/api/v3/ping", timeout=5).status_code == 200
    server.stop()
    with pytest.raises(requests.ConnectionError):
        session.get(server.url + "/api/v3/ping", timeout=5)
    session.close()


def test_python_binance_client_speaks_to_it(standin: BinanceStandIn) -> None:
    from binance.client import Client
    from binance.exceptions import BinanceAPIException

    class LocalClient(Client):
        API_URL = standin.url + "/api"

    client = LocalClient(ping=True)
    try:
        assert client.get_server_time() == {"serverTime": NOW}
        rows = client.get_klines(symbol="BTCUSDT", interval="1m", startTime=BASE, limit=3)
        assert rows == SYNTHETIC_1M[:3]
        with pytest.raises(BinanceAPIException) as raised:
            client.get_klines(symbol="NOPE", interval="1m")
        assert raised.value.code == -1121
    finally:
        client.close_connection()


def test_command_line_serves_synthetic_days() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    today = int(time.time() * 1000) // DAY * DAY
    command = [sys.executable, "-m", "crypto_assets_tests.binance_standin"]
    command += ["--port", str(port), "--synthetic-days", "1"]
    process = subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url == f"http://127.0.0.1:{port}"
        rows = requests.get(
            url + "/api/v3/klines", params={"symbol": "BTCUSDT", "interval": "1m"}, timeout=5
        ).json()
        assert len(rows) == 500
        assert rows[-1][0] % DAY == DAY - MINUTE  # the last minute of a UTC day
        assert today - MINUTE <= rows[-1][0] <= today + DAY - MINUTE  # yesterday's (or today's)
    finally:
        process.terminate()
        process.wait(timeout=5)


# ----------------------------------------------------------------------------- data helpers


def check_candles(rows: list[list[Any]], interval: str) -> None:
    step = INTERVAL_MS[interval]
    for prev, row in itertools.pairwise(rows):
        assert row[0] - prev[0] == step
    for row in rows:
        assert len(row) == 12 and row[11] == "0"
        assert row[6] == row[0] + step - 1
        o, h, lo, c = (Decimal(v) for v in row[1:5])
        assert all(PRICE_TEXT.match(v) for v in row[1:6]), row
        assert lo > 0 and lo <= min(o, c) and h >= max(o, c), row
        volume, quote = Decimal(row[5]), Decimal(row[7])
        taker_base, taker_quote = Decimal(row[9]), Decimal(row[10])
        assert volume >= 0 and quote >= 0 and row[8] >= 0
        assert 0 <= taker_base <= volume and 0 <= taker_quote <= quote
        assert volume * lo * Decimal("0.999") <= quote <= volume * h * Decimal("1.001")


@pytest.mark.parametrize(
    ("interval", "span"), [("1s", 3_600_000), ("1m", 3 * DAY), ("1h", 60 * DAY), ("1d", 800 * DAY)]
)
def test_synthetic_candles_obey_ohlc_rules(interval: str, span: int) -> None:
    rows = synthetic_klines(interval, BASE, BASE + span)
    assert len(rows) == span // INTERVAL_MS[interval]
    assert rows[0][0] == BASE and rows[-1][0] < BASE + span
    assert rows[0][1] == "30000.00000000"
    check_candles(rows, interval)


def test_synthetic_weeks_open_on_monday_and_small_prices_stay_positive() -> None:
    rows = synthetic_klines("1w", BASE, BASE + 400 * DAY, start_price=0.05)
    assert time.gmtime(rows[0][0] / 1000).tm_wday == 0  # Monday
    assert rows[0][0] >= BASE
    check_candles(rows, "1w")


def test_synthetic_is_deterministic_per_seed() -> None:
    a = synthetic_klines("5m", BASE, BASE + DAY, seed=1)
    assert a == synthetic_klines("5m", BASE, BASE + DAY, seed=1)
    assert a != synthetic_klines("5m", BASE, BASE + DAY, seed=2)
    assert synthetic_klines("1m", BASE, BASE) == []


def test_synthetic_year_of_minutes_fills_the_grid() -> None:
    rows = synthetic_klines("1m", BASE, BASE + 365 * DAY)
    assert len(rows) == 525_600
    assert rows[-1][6] == BASE + 365 * DAY - 1


def test_load_klines_csv_keeps_exact_text(real_rows: list[list[Any]]) -> None:
    assert len(real_rows) == 14_400
    assert real_rows[0] == [
        1754006400000,
        "115764.07",
        "115764.08",
        "115704.78",
        "115729.0",
        "11.87539",
        1754006459999,
        "1374354.6403012",
        1421,
        "3.66465",
        "424075.0494376",
        "0",
    ]
    check_times = [row[0] for row in real_rows]
    assert check_times == sorted(check_times)


def test_load_klines_csv_ignores_order_book_column() -> None:
    path = shared_data_dir() / REAL_1H
    if not path.is_file():
        pytest.skip(ABSENT)
    rows = load_klines_csv(path)
    assert len(rows) == 3160
    assert rows[0] == [
        1704067200000,
        "42283.58000000",
        "42554.57000000",
        "42261.02000000",
        "42475.23000000",
        "1271.68108000",
        1704070799999,
        "53957248.97378900",
        47134,
        "682.57581000",
        "28957416.81964500",
        "0",
    ]


def test_real_klines_served_verbatim(real_rows: list[list[Any]]) -> None:
    clock = Clock(real_rows[-1][6] + 1)
    with BinanceStandIn({("BTCUSDT", "1m"): real_rows}, clock_ms=clock) as server:
        first = klines(server, startTime=real_rows[0][0], limit=2)
        assert first.text.startswith('[[1754006400000,"115764.07","115764.08","115704.78"')
        seen: list[list[Any]] = []
        start = real_rows[0][0]
        while page := klines(server, startTime=start, limit=1000).json():
            seen.extend(page)
            start = page[-1][0] + 1
        assert seen == real_rows
        clock.value = real_rows[100][0] + 20_000  # inside the data: later candles do not exist
        rows = klines(server, limit=1000).json()
        assert len(rows) == 101 and rows[-1][0] == real_rows[100][0]
        assert rows[-2] == real_rows[99]
