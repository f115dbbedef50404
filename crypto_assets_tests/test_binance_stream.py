"""The kline stream: its messages read into candles, the stand-in's websocket, and the client
agreeing with REST candle for candle while the stand-in's clock moves minutes in milliseconds."""

import dataclasses
import json
import random
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pytest
import requests
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from crypto_assets.klines.transform import clean_frame, raw_frame
from crypto_assets.settings import SettingsError, binance_stream_url
from crypto_assets.sources.binance_rest import BinanceKlinesClient
from crypto_assets.sources.binance_stream import KlineStream, KlineUpdate
from crypto_assets.sources.stream_messages import (
    Candle,
    KlineEvent,
    ServerShutdown,
    StreamHealth,
    StreamMessageError,
    parse_message,
    reconnect_delay,
    stream_url,
)
from crypto_assets_tests.binance_standin import BinanceStandIn, synthetic_klines
from crypto_assets_tests.clocks import FakeClock
from crypto_assets_tests.conftest import utc_ms

MINUTE = 60_000
REPO_ROOT = Path(__file__).resolve().parents[1]
BASE = utc_ms("2024-01-01")
ROWS = synthetic_klines("1m", BASE, BASE + 60 * MINUTE)
KLINE_KEYS = {"t", "T", "s", "i", "f", "L", "o", "c", "h", "l", "v", "n", "x", "q", "V", "Q", "B"}

EVENT = {
    "e": "kline",
    "E": 1704067265123,
    "s": "BTCUSDT",
    "k": {
        "t": 1704067260000,
        "T": 1704067319999,
        "s": "BTCUSDT",
        "i": "1m",
        "f": 100,
        "L": 200,
        "o": "42283.58000000",
        "c": "42290.01000000",
        "h": "42299.99000000",
        "l": "42280.00000000",
        "v": "12.34567000",
        "n": 101,
        "x": False,
        "q": "522000.12345678",
        "V": "6.00000000",
        "Q": "253700.00000000",
        "B": "0",
    },
}
CANDLE = Candle(
    symbol="BTCUSDT",
    interval="1m",
    open_time=1704067260000,
    open="42283.58000000",
    high="42299.99000000",
    low="42280.00000000",
    close="42290.01000000",
    volume="12.34567000",
    close_time=1704067319999,
    quote_asset_volume="522000.12345678",
    num_trades=101,
    taker_base_vol="6.00000000",
    taker_quote_vol="253700.00000000",
    closed=False,
)


# --------------------------------------------------------------------------- messages


def test_a_kline_event_becomes_a_candle_with_the_rest_columns() -> None:
    assert parse_message(json.dumps(EVENT), "BTCUSDT", "1m") == KlineEvent(CANDLE, 1704067265123)
    wrapped = json.dumps({"stream": "btcusdt@kline_1m", "data": EVENT})
    assert parse_message(wrapped, "BTCUSDT", "1m") == KlineEvent(CANDLE, 1704067265123)


def test_server_shutdown_raw_or_wrapped_and_other_events() -> None:
    shutdown = {"e": "serverShutdown", "E": 1704067265000}
    assert parse_message(json.dumps(shutdown), "BTCUSDT", "1m") == ServerShutdown(1704067265000)
    wrapped = json.dumps({"event": shutdown})
    assert parse_message(wrapped, "BTCUSDT", "1m") == ServerShutdown(1704067265000)
    assert parse_message('{"result": null, "id": 1}', "BTCUSDT", "1m") is None
    assert parse_message('{"e": "trade", "E": 1}', "BTCUSDT", "1m") is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"e": "kline", "k": {"t":', "not JSON: "),
        ("[1, 2]", "not a JSON object: "),
        ('{"e": "kline", "E": 1, "s": "BTCUSDT"}', "a kline event without its 'k' object"),
        (
            json.dumps({**EVENT, "s": "ETHUSDT"}),
            "a kline for 'ETHUSDT' '1m', not BTCUSDT 1m",
        ),
        (json.dumps({**EVENT, "k": {**EVENT["k"], "x": 0}}), "'x' (closed) is 0, not true/false"),
        (json.dumps({**EVENT, "k": {**EVENT["k"], "t": "1"}}), "'t' is '1', not an integer"),
        (json.dumps({**EVENT, "k": {**EVENT["k"], "n": True}}), "'n' is True, not an integer"),
        (json.dumps({**EVENT, "k": {**EVENT["k"], "c": 42290.0}}), "'c' is 42290.0, not decimal"),
        (json.dumps({**EVENT, "k": {**EVENT["k"], "h": "NaN"}}), "'h' is 'NaN', not decimal"),
        (json.dumps({**EVENT, "k": {**EVENT["k"], "o": "abc"}}), "'o' is 'abc', not decimal"),
        (
            json.dumps({**EVENT, "k": {**EVENT["k"], "T": 1704067379999}}),
            "close time 1704067379999 does not end the 1m candle opening at 1704067260000",
        ),
        (json.dumps({**EVENT, "E": None}), "'E' is None, not an integer"),
    ],
)
def test_a_malformed_message_is_refused_naming_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(StreamMessageError, match="^" + re.escape(message)):
        parse_message(text, "BTCUSDT", "1m")


def test_a_binary_frame_is_read_like_text() -> None:
    assert parse_message(json.dumps(EVENT).encode(), "BTCUSDT", "1m") == KlineEvent(
        CANDLE, 1704067265123
    )
    with pytest.raises(StreamMessageError, match=re.escape("not JSON: b'\\xff\\x00'")):
        parse_message(b"\xff\x00", "BTCUSDT", "1m")


def test_message_age_is_seconds_since_the_last_message() -> None:
    health = StreamHealth("connected", "ws://x/ws/btcusdt@kline_1m", 90.0, 100.0, 0, 0, 0, None)
    assert health.message_age(now=103.5) == 3.5
    assert dataclasses.replace(health, last_message_at=None).message_age(now=103.5) is None


def test_stream_urls_and_a_bad_base() -> None:
    base = "wss://stream.binance.com:9443/"
    assert stream_url(base, "BTCUSDT", "1m") == "wss://stream.binance.com:9443/ws/btcusdt@kline_1m"
    assert (
        stream_url(base, "ETHUSDT", "1h", combined=True)
        == "wss://stream.binance.com:9443/stream?streams=ethusdt@kline_1h"
    )
    with pytest.raises(
        ValueError, match=re.escape("BINANCE_STREAM_URL='https://api.binance.com' is not")
    ):
        stream_url("https://api.binance.com", "BTCUSDT", "1m")
    with pytest.raises(ValueError, match="Invalid stream interval '1M'"):
        stream_url(base, "BTCUSDT", "1M")
    with pytest.raises(ValueError, match="Invalid symbol 'btcusdt'"):
        stream_url(base, "btcusdt", "1m")


def test_settings_read_the_stream_url() -> None:
    assert binance_stream_url({}) == "wss://stream.binance.com:9443"
    market_data = {"BINANCE_STREAM_URL": "wss://data-stream.binance.vision/"}
    assert binance_stream_url(market_data) == "wss://data-stream.binance.vision"
    with pytest.raises(SettingsError, match=re.escape("BINANCE_STREAM_URL='http://127.0.0.1:1'")):
        binance_stream_url({"BINANCE_STREAM_URL": "http://127.0.0.1:1"})


def test_reconnect_delay_doubles_to_its_cap_with_half_of_it_jittered() -> None:
    rng = random.Random(3)
    delays = [reconnect_delay(attempt, 0.5, 30.0, rng) for attempt in range(10) for _ in range(50)]
    for attempt in range(10):
        ceiling = min(30.0, 0.5 * 2**attempt)
        some = delays[attempt * 50 : attempt * 50 + 50]
        assert all(ceiling / 2 <= delay <= ceiling for delay in some)
        assert len(set(some)) == 50  # jittered: no two clients retry in lockstep
    assert reconnect_delay(1000, 0.5, 30.0, rng) <= 30.0


def test_a_candle_is_the_rest_row_and_merges_onto_warehouse_history() -> None:
    row = ROWS[5]
    candle = Candle.from_kline(row, "BTCUSDT", "1m")
    assert candle.as_kline() == row
    assert (candle.open_time, candle.num_trades, candle.closed) == (BASE + 5 * MINUTE, row[8], True)
    fetched_at = datetime(2024, 1, 1, 1, tzinfo=timezone.utc)
    streamed = clean_frame(raw_frame([candle.as_kline()], "BTCUSDT", "1m", fetched_at))
    from_rest = clean_frame(raw_frame([row], "BTCUSDT", "1m", fetched_at))
    pd.testing.assert_frame_equal(streamed, from_rest)
    assert streamed["open_time"].tolist() == [pd.Timestamp("2024-01-01 00:05", tz="UTC")]


# --------------------------------------------------------------------------- the stand-in


@pytest.fixture
def clock() -> FakeClock:
    """The stand-in's exchange time: 2024-01-01 00:10:05 UTC until a test moves it."""
    return FakeClock((BASE + 10 * MINUTE + 5_000) / 1000)


@pytest.fixture
def standin(clock: FakeClock) -> Iterator[BinanceStandIn]:
    klines = {("BTCUSDT", "1m"): [list(row) for row in ROWS]}
    with BinanceStandIn(
        klines, clock_ms=lambda: int(clock.now * 1000), stream_tick_seconds=0.02
    ) as server:
        yield server


def rest_klines(standin: BinanceStandIn, **params: int) -> list[list]:
    query = {"symbol": "BTCUSDT", "interval": "1m", **params}
    return requests.get(f"{standin.url}/api/v3/klines", params=query, timeout=5).json()


def test_standin_pushes_binance_kline_events_that_agree_with_rest(
    standin: BinanceStandIn, clock: FakeClock
) -> None:
    with connect(f"{standin.stream_url}/ws/btcusdt@kline_1m", open_timeout=5) as socket:
        forming = json.loads(socket.recv(timeout=5))
        assert set(forming) == {"e", "E", "s", "k"} and set(forming["k"]) == KLINE_KEYS
        assert (forming["e"], forming["E"], forming["s"]) == ("kline", BASE + 605_000, "BTCUSDT")
        assert (forming["k"]["t"], forming["k"]["x"]) == (BASE + 10 * MINUTE, False)
        now_rest = rest_klines(standin, limit=1)[0]
        assert forming["k"]["c"] == now_rest[4] and forming["k"]["v"] == now_rest[5]
        assert forming["k"]["c"] != ROWS[10][4]  # the forming candle, 5 s into its minute
        clock.now += 120  # 00:12:05: two candles closed
        events = []
        while len(events) < 3 or events[-1]["k"]["x"]:
            event = json.loads(socket.recv(timeout=5))
            if event["E"] == BASE + 725_000:
                events.append(event)
    assert [(e["k"]["t"], e["k"]["x"]) for e in events] == [
        (BASE + 10 * MINUTE, True),
        (BASE + 11 * MINUTE, True),
        (BASE + 12 * MINUTE, False),
    ]
    closed = rest_klines(standin, startTime=BASE + 10 * MINUTE, limit=2)
    for event, row in zip(events, closed, strict=False):
        k = event["k"]
        assert [k["t"], k["o"], k["h"], k["l"], k["c"], k["v"], k["T"]] == row[:7]
        assert [k["q"], k["n"], k["V"], k["Q"]] == row[7:11]


def test_standin_combined_stream_wraps_events_and_refuses_bad_paths(
    standin: BinanceStandIn,
) -> None:
    path = "/stream?streams=btcusdt@kline_1m/btcusdt@kline_5m"
    with connect(standin.stream_url + path, open_timeout=5) as socket:
        message = json.loads(socket.recv(timeout=5))
    assert set(message) == {"stream", "data"} and message["stream"] == "btcusdt@kline_1m"
    assert message["data"]["k"]["t"] == BASE + 10 * MINUTE
    for path, status in (
        ("/ws/btcusdt@kline_7m", 400),
        ("/ws/BTCUSDT", 400),
        ("/stream", 400),
        ("/api/v3/klines", 404),
    ):
        with pytest.raises(InvalidStatus) as refused:
            connect(standin.stream_url + path, open_timeout=5)
        assert refused.value.response.status_code == status, path
    standin.refuse_streams = True
    with pytest.raises(InvalidStatus, match="503"):
        connect(f"{standin.stream_url}/ws/btcusdt@kline_1m", open_timeout=5)
    assert standin.refused_streams == 1


def test_command_line_live_serves_today_and_the_stream() -> None:
    """``--live``: the stream URL is the second line, and today's forming candle is on it."""
    command = [sys.executable, "-m", "crypto_assets_tests.binance_standin", "--port", "0"]
    command += ["--synthetic-days", "1", "--live", "--stream-tick", "0.05"]
    with subprocess.Popen(
        command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    ) as process:
        try:
            assert process.stdout is not None
            rest_url, ws_url = process.stdout.readline().strip(), process.stdout.readline().strip()
            assert rest_url.startswith("http://127.0.0.1:") and ws_url.startswith("ws://127.0.0.1:")
            with connect(f"{ws_url}/ws/btcusdt@kline_1m", open_timeout=5) as socket:
                event = json.loads(socket.recv(timeout=5))
            minute_now = int(time.time() * 1000) // MINUTE * MINUTE
            assert event["k"]["t"] in (minute_now - MINUTE, minute_now)
            assert event["k"]["x"] is False
            query = {"symbol": "BTCUSDT", "interval": "1m", "limit": 1}
            last = requests.get(f"{rest_url}/api/v3/klines", params=query, timeout=5).json()[0]
            assert last[0] in (minute_now, minute_now + MINUTE)  # REST's newest: the same candle
        finally:
            process.terminate()


# --------------------------------------------------------------------------- the client


def test_stream_and_rest_agree_candle_for_candle_over_five_minutes(
    standin: BinanceStandIn, clock: FakeClock
) -> None:
    updates: list[KlineUpdate] = []
    rest = BinanceKlinesClient(base_url=standin.url)
    with KlineStream(base_url=standin.stream_url, rest=rest, on_update=updates.append) as stream:
        assert stream.wait_until(lambda s: s.forming is not None, timeout=5)
        for minute in range(1, 6):
            clock.now += 60
            forming_at = BASE + (10 + minute) * MINUTE
            assert stream.wait_until(
                lambda s, at=forming_at: s.forming is not None and s.forming.open_time == at, 5
            )
        snapshot = stream.snapshot()
        forming_rest = rest_klines(standin, limit=1)[0]
    closed_rest = rest.get_klines("BTCUSDT", "1m", BASE + 10 * MINUTE, BASE + 15 * MINUTE)
    assert [candle.as_kline() for candle in snapshot.closed] == closed_rest
    assert [candle.open_time for candle in snapshot.closed] == [
        BASE + minute * MINUTE for minute in range(10, 15)
    ]
    assert snapshot.forming is not None
    assert snapshot.forming.as_kline() == forming_rest
    assert snapshot.forming.open_time == BASE + 15 * MINUTE
    assert snapshot.last_price == float(forming_rest[4])
    assert snapshot.last_event_time_ms == BASE + 15 * MINUTE + 5_000
    closed_updates = [u for u in updates if u.candle.closed]
    assert [u.candle for u in closed_updates] == list(snapshot.closed)
    assert {u.source for u in updates} == {"stream"}
    health = snapshot.health
    assert (health.state, health.reconnects, health.repaired_candles) == ("connected", 0, 0)
    assert health.malformed_messages == 0 and health.last_error is None
    assert stream.health().state == "stopped"
    assert [c["close_code"] for c in standin.stream_connections] == [1000]  # a clean goodbye


def test_combined_stream_backfill_and_bounded_memory(
    standin: BinanceStandIn, clock: FakeClock
) -> None:
    """``backfill_from_ms`` fills from the warehouse's newest candle to now over REST; the
    closed candles kept are capped, and dropped once the warehouse holds them."""
    rest = BinanceKlinesClient(base_url=standin.url)
    stream = KlineStream(
        base_url=standin.stream_url,
        rest=rest,
        combined=True,
        backfill_from_ms=BASE + 4 * MINUTE,
        max_closed=4,
    )
    assert stream.url == f"{standin.stream_url}/stream?streams=btcusdt@kline_1m"
    with stream:
        assert stream.wait_until(lambda s: s.health.repaired_candles == 4, timeout=5)
        assert [c.open_time for c in stream.closed_candles()] == [
            BASE + minute * MINUTE for minute in (6, 7, 8, 9)
        ]
        clock.now += 60
        assert stream.wait_until(lambda s: s.closed[-1].open_time == BASE + 10 * MINUTE, 5)
        assert [c.open_time for c in stream.closed_candles(after_open_time=BASE + 8 * MINUTE)] == [
            BASE + 9 * MINUTE,
            BASE + 10 * MINUTE,
        ]
        assert stream.drop_closed_through(BASE + 9 * MINUTE) == 3
        assert [c.open_time for c in stream.closed_candles()] == [BASE + 10 * MINUTE]


def test_a_failing_callback_does_not_stop_the_stream(
    standin: BinanceStandIn, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(update: KlineUpdate) -> None:
        raise RuntimeError("the page fell over")

    rest = BinanceKlinesClient(base_url=standin.url)
    with KlineStream(base_url=standin.stream_url, rest=rest, on_update=broken) as stream:
        assert stream.wait_until(lambda s: s.forming is not None, timeout=5)
        clock.now += 60
        assert stream.wait_until(lambda s: len(s.closed) == 1, timeout=5)
        assert stream.health().reconnects == 0
    assert "on_update failed" in caplog.text and "the page fell over" in caplog.text
