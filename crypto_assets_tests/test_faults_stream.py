"""The kline stream's faults against the stand-in's real websocket: a socket dropped mid-minute,
a stall, serverShutdown, a malformed message, pings during a slow REST repair, an unreachable
stream at start and the 24 h rotation. Each closed candle must arrive exactly once."""

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from crypto_assets.sources.binance_rest import BinanceKlinesClient
from crypto_assets.sources.binance_stream import KlineStream, KlineUpdate
from crypto_assets.sources.pacing import RetryPolicy
from crypto_assets_tests.binance_standin import BinanceStandIn, synthetic_klines
from crypto_assets_tests.binance_standin.stream import kline_event
from crypto_assets_tests.clocks import FakeClock
from crypto_assets_tests.conftest import utc_ms
from crypto_assets_tests.processes import free_port

pytestmark = pytest.mark.faults

MINUTE = 60_000
BASE = utc_ms("2024-01-01")
ROWS = synthetic_klines("1m", BASE, BASE + 60 * MINUTE)


@pytest.fixture
def clock() -> FakeClock:
    """The stand-in's exchange time: 2024-01-01 00:10:05 UTC, 5 s into the 00:10 candle."""
    return FakeClock((BASE + 10 * MINUTE + 5_000) / 1000)


def standin_at(clock: FakeClock, **options: Any) -> BinanceStandIn:
    klines = {("BTCUSDT", "1m"): [list(row) for row in ROWS]}
    return BinanceStandIn(
        klines, clock_ms=lambda: int(clock.now * 1000), stream_tick_seconds=0.02, **options
    )


@pytest.fixture
def standin(clock: FakeClock) -> Iterator[BinanceStandIn]:
    with standin_at(clock, stream_ping_seconds=None) as server:
        yield server


def kline_stream(
    standin: BinanceStandIn, updates: list[KlineUpdate], **options: Any
) -> KlineStream:
    rest = BinanceKlinesClient(
        base_url=standin.url, retry=RetryPolicy(max_attempts=3, backoff_base=0.01)
    )
    settings: dict[str, Any] = {"backoff_base": 0.05, "backoff_max": 0.2, **options}
    return KlineStream(base_url=standin.stream_url, rest=rest, on_update=updates.append, **settings)


def forming_at(minute: int) -> Any:
    return lambda s: s.forming is not None and s.forming.open_time == BASE + minute * MINUTE


def closed_through(minute: int) -> Any:
    return lambda s: bool(s.closed) and s.closed[-1].open_time == BASE + minute * MINUTE


def closed_minutes(updates: list[KlineUpdate]) -> list[tuple[int, str]]:
    """(minute after midnight, source) of every closed candle delivered, in order."""
    return [((u.candle.open_time - BASE) // MINUTE, u.source) for u in updates if u.candle.closed]


@pytest.mark.parametrize("abrupt", [False, True], ids=["close-frame", "dropped"])
def test_socket_closed_mid_minute_repairs_the_candles_closed_meanwhile(
    standin: BinanceStandIn, clock: FakeClock, abrupt: bool
) -> None:
    updates: list[KlineUpdate] = []
    with kline_stream(standin, updates) as stream:
        assert stream.wait_until(forming_at(10), timeout=5)
        standin.refuse_streams = True  # keep it away while three candles close
        assert standin.close_streams(abrupt=abrupt) == 1
        assert stream.wait_until(lambda s: s.health.state != "connected", timeout=5)
        clock.now += 180  # 00:13:05: the 00:10, 00:11 and 00:12 candles closed meanwhile
        standin.refuse_streams = False
        assert stream.wait_until(lambda s: s.health.repaired_candles == 3, timeout=10)
        assert stream.wait_until(forming_at(13), timeout=5)
        clock.now += 120
        assert stream.wait_until(forming_at(15), timeout=5)
        health = stream.health()
    assert closed_minutes(updates) == [
        (10, "rest"),
        (11, "rest"),
        (12, "rest"),
        (13, "stream"),
        (14, "stream"),
    ]
    rest = BinanceKlinesClient(base_url=standin.url)
    expected = rest.get_klines("BTCUSDT", "1m", BASE + 10 * MINUTE, BASE + 15 * MINUTE)
    assert [u.candle.as_kline() for u in updates if u.candle.closed] == expected
    assert (health.state, health.reconnects, health.repaired_candles) == ("connected", 1, 3)


def test_a_candle_sent_again_is_not_delivered_twice(
    standin: BinanceStandIn, clock: FakeClock
) -> None:
    updates: list[KlineUpdate] = []
    with kline_stream(standin, updates) as stream:
        assert stream.wait_until(forming_at(10), timeout=5)
        clock.now += 120
        assert stream.wait_until(forming_at(12), timeout=5)
        for minute in (10, 11):  # a replay of finals already delivered, with their own E
            row = ROWS[minute]
            replay = kline_event(row, "BTCUSDT", "1m", row[6] + 1, closed=True)
            assert standin.send_stream_text(json.dumps(replay)) == 1
        clock.now += 60
        assert stream.wait_until(forming_at(13), timeout=5)
        snapshot = stream.snapshot()
    assert closed_minutes(updates) == [(10, "stream"), (11, "stream"), (12, "stream")]
    assert [c.open_time for c in snapshot.closed] == [BASE + m * MINUTE for m in (10, 11, 12)]
    assert snapshot.last_event_time_ms == BASE + 13 * MINUTE + 5_000  # the replay is not news


def test_a_candle_the_stream_skipped_is_fetched_over_rest(
    standin: BinanceStandIn, clock: FakeClock
) -> None:
    updates: list[KlineUpdate] = []
    with kline_stream(standin, updates) as stream:
        assert stream.wait_until(forming_at(10), timeout=5)
        standin.stall_streams()  # the finals of 00:10 and 00:11 are not pushed...
        clock.now += 120
        row = ROWS[12]  # ...but the 00:12 candle's first update is
        forming = kline_event(row, "BTCUSDT", "1m", BASE + 12 * MINUTE + 5_000, closed=False)
        assert standin.send_stream_text(json.dumps(forming)) == 1
        assert stream.wait_until(closed_through(11), timeout=5)
        assert closed_minutes(updates) == [(10, "rest"), (11, "rest")]
        standin.resume_streams()  # now the stand-in pushes the finals it held back
        clock.now += 60
        assert stream.wait_until(closed_through(12), timeout=5)
        health = stream.health()
    assert closed_minutes(updates) == [(10, "rest"), (11, "rest"), (12, "stream")]
    assert (health.reconnects, health.repaired_candles) == (0, 2)


def test_a_stall_is_detected_within_the_stall_timeout_and_reconnected(
    standin: BinanceStandIn, clock: FakeClock
) -> None:
    updates: list[KlineUpdate] = []
    with kline_stream(standin, updates, stall_timeout=0.5) as stream:
        assert stream.wait_until(forming_at(10), timeout=5)
        stalled_at = time.monotonic()
        assert standin.stall_streams() == 1
        assert stream.wait_until(lambda s: s.health.reconnects == 1, timeout=5)
        noticed = time.monotonic() - stalled_at
        assert stream.wait_until(lambda s: s.health.state == "connected", timeout=5)
        clock.now += 60
        assert stream.wait_until(closed_through(10), timeout=5)
        health = stream.health()
    assert 0.4 <= noticed < 1.5  # 0.5 s of silence, then a backoff of at most 0.2 s
    assert health.last_error == "stalled: no message for 0.5 s"
    stalled = standin.stream_connections[0]
    assert stalled["stalled"] is True and stalled["closed"] is not None  # the client hung up
    assert "closed_by_standin" not in stalled
    # Over the stream, or over REST when the repair asked after it closed: once either way.
    assert [minute for minute, _ in closed_minutes(updates)] == [10]


def test_server_shutdown_reconnects_at_once(standin: BinanceStandIn, clock: FakeClock) -> None:
    updates: list[KlineUpdate] = []
    # A backoff of 2.5-5 s would show: serverShutdown must not wait for one.
    with kline_stream(standin, updates, backoff_base=5.0, backoff_max=5.0) as stream:
        assert stream.wait_until(forming_at(10), timeout=5)
        sent_at = time.monotonic()
        assert standin.send_server_shutdown() == 1
        assert stream.wait_until(lambda s: s.health.reconnects == 1, timeout=5)
        reconnected = time.monotonic() - sent_at
        clock.now += 60
        assert stream.wait_until(closed_through(10), timeout=5)
        health = stream.health()
    assert reconnected < 1.0
    assert health.last_error == "serverShutdown: Binance is about to close"
    assert (health.state, health.reconnects) == ("connected", 1)
    assert "closed_by_standin" not in standin.stream_connections[0]
    assert standin.stream_connections[0]["closed"] is not None
    # Over the stream, or over REST when the repair asked after it closed: once either way.
    assert [minute for minute, _ in closed_minutes(updates)] == [10]


def test_malformed_messages_are_logged_and_skipped(
    standin: BinanceStandIn, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    updates: list[KlineUpdate] = []
    bad_price = kline_event(ROWS[10], "BTCUSDT", "1m", BASE + 10 * MINUTE + 6_000, closed=False)
    bad_price["k"]["c"] = None
    with kline_stream(standin, updates) as stream:
        assert stream.wait_until(forming_at(10), timeout=5)
        assert standin.send_stream_text('{"e": "kline", "k": {"t":') == 1
        assert standin.send_stream_text(json.dumps(bad_price)) == 1
        clock.now += 60
        assert stream.wait_until(closed_through(10), timeout=5)
        health = stream.health()
    assert health.malformed_messages == 2
    assert (health.state, health.reconnects, health.last_error) == ("connected", 0, None)
    assert closed_minutes(updates) == [(10, "stream")]
    assert 'skipped a malformed message, not JSON: \'{"e": "kline", "k": {"t":\'' in caplog.text
    assert "skipped a malformed message, 'c' is None, not decimal text" in caplog.text


def test_pings_are_answered_while_a_slow_rest_repair_runs(clock: FakeClock) -> None:
    updates: list[KlineUpdate] = []
    with (
        standin_at(clock, stream_ping_seconds=0.05, stream_pong_timeout=0.3) as standin,
        kline_stream(standin, updates) as stream,
    ):
        assert stream.wait_until(forming_at(10), timeout=5)
        standin.inject("slow", path="/api/v3/time", delay=1.0)  # the repair's first request
        standin.refuse_streams = True
        standin.close_streams()
        assert stream.wait_until(lambda s: s.health.state != "connected", timeout=5)
        clock.now += 60
        standin.refuse_streams = False
        assert stream.wait_until(lambda s: s.health.repaired_candles == 1, timeout=10)
        health = stream.health()
    first, repaired = standin.stream_connections[:2]
    assert not first["missed_pong"] and not repaired["missed_pong"]
    assert repaired["pongs"] >= 5  # pinged every 0.05 s through the 1 s repair
    assert health.reconnects == 1
    assert closed_minutes(updates) == [(10, "rest")]


def test_unreachable_at_start_is_down_with_backoff_and_no_exception(
    standin: BinanceStandIn,
) -> None:
    updates: list[KlineUpdate] = []
    nobody = f"ws://127.0.0.1:{free_port()}"
    with KlineStream(base_url=nobody, rest=BinanceKlinesClient(base_url=standin.url)) as stream:
        assert stream.wait_until(lambda s: s.health.state == "down", timeout=5)
        assert "Connect call failed" in (stream.health().last_error or "")

    standin.refuse_streams = True
    stream = kline_stream(standin, updates, backoff_base=0.1, backoff_max=0.4)
    with stream:
        assert stream.wait_until(lambda s: s.health.state == "down", timeout=5)
        time.sleep(1.5)
        refused = standin.refused_streams
        health = stream.health()
        standin.refuse_streams = False
        assert stream.wait_until(forming_at(10), timeout=5)
        assert stream.health().state == "connected"
    # Delays of 0.05-0.1, 0.1-0.2, then 0.2-0.4 s: about six attempts in 1.5 s, not hundreds.
    assert 3 <= refused <= 12
    assert health.last_error == ("InvalidStatus: server rejected WebSocket connection: HTTP 503")
    assert health.connected_since is None and health.reconnects == 0
    assert stream.health().state == "stopped"


def test_reconnecting_turns_down_after_three_failed_attempts(standin: BinanceStandIn) -> None:
    updates: list[KlineUpdate] = []
    with kline_stream(standin, updates, backoff_base=1.0, backoff_max=1.0) as stream:
        assert stream.wait_until(forming_at(10), timeout=5)
        standin.refuse_streams = True
        standin.close_streams()
        assert stream.wait_until(lambda s: s.health.state == "reconnecting", timeout=5)
        assert stream.wait_until(lambda s: s.health.state == "down", timeout=10)
        refused = standin.refused_streams
        standin.refuse_streams = False
        assert stream.wait_until(lambda s: s.health.state == "connected", timeout=5)
    assert refused == 3  # two refused attempts leave it reconnecting, the third turns it down


def test_connections_are_renewed_before_their_age_runs_out(
    standin: BinanceStandIn, clock: FakeClock
) -> None:
    updates: list[KlineUpdate] = []
    with kline_stream(standin, updates, max_connection_age=0.3) as stream:
        for minute in (10, 11, 12, 13):
            assert stream.wait_until(forming_at(minute), timeout=5)
            time.sleep(0.2)
            clock.now += 60
        assert stream.wait_until(forming_at(14), timeout=5)
        health = stream.health()
    assert health.reconnects >= 2
    assert health.last_error == "rotating before Binance's 24 h disconnect"
    assert [minute for minute, _ in closed_minutes(updates)] == [10, 11, 12, 13]


def test_stop_returns_at_once_while_a_rest_repair_hangs(
    standin: BinanceStandIn, clock: FakeClock
) -> None:
    updates: list[KlineUpdate] = []
    stream = kline_stream(standin, updates).start()
    assert stream.wait_until(forming_at(10), timeout=5)
    standin.inject("slow", path="/api/v3/time", delay=5.0)
    standin.close_streams()
    clock.now += 60
    assert stream.wait_until(lambda s: s.health.reconnects == 1, timeout=5)
    started = time.monotonic()
    stream.stop()
    assert time.monotonic() - started < 1.0
    assert stream.health().state == "stopped"
