"""Faults on Binance's side, over real HTTP: a ban, an outage mid-range, a skewed server clock,
a maintenance gap, duplicate and off-grid candles. Waits run on a clock shared by the stand-in
and the client, so a two-minute ban costs no real time."""

from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from crypto_assets.klines import assets as klines_assets
from crypto_assets.resources import local_resources
from crypto_assets.sources.binance_rest import BinanceKlinesClient
from crypto_assets.sources.pacing import WeightPacer
from crypto_assets_tests import clocks
from crypto_assets_tests.binance_standin import BinanceStandIn, synthetic_klines
from crypto_assets_tests.lineage import check_results, failure_text, materialize_days

pytestmark = pytest.mark.faults

JAN_1_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
JAN_4_MS = 1_704_326_400_000  # 2024-01-04T00:00:00Z
MINUTE_MS = 60_000


def three_days() -> list[list]:
    return synthetic_klines("1m", JAN_1_MS, JAN_4_MS, seed=7)


def fake_clock_client(standin: BinanceStandIn, clock: clocks.FakeClock) -> BinanceKlinesClient:
    return BinanceKlinesClient(
        base_url=standin.url,
        pacer=WeightPacer(clock=clock, sleep=clock.sleep),
        sleep=clock.sleep,
    )


def test_a_418_ban_with_retry_after_120_is_waited_out_in_silence():
    clock = clocks.FakeClock()
    rows = three_days()
    with BinanceStandIn(
        {("BTCUSDT", "1m"): rows}, wall_clock=clock, clock_ms=lambda: JAN_4_MS
    ) as standin:
        started = clock.now
        standin.ban(120)
        klines = fake_clock_client(standin, clock).get_klines(
            "BTCUSDT", "1m", JAN_1_MS, JAN_1_MS + 10 * MINUTE_MS
        )
    assert klines == rows[:10]
    assert clock.sleeps == [120.0]
    assert [(r["path"], r["status"], r["time"] - started) for r in standin.requests] == [
        ("/api/v3/time", 418, 0.0),
        ("/api/v3/time", 200, 120.0),
        ("/api/v3/klines", 200, 120.0),
    ]


def run_with_shared_clock(home: Path, standin: BinanceStandIn, first: str, last: str):
    resources = {
        **local_resources({"CRYPTO_ASSETS_HOME": str(home), "BINANCE_ARCHIVE_URL": ""}),
        "binance": clocks.SharedClockBinance(base_url=standin.url),
    }
    return materialize_days(resources, first, last)


def stored_days(home: Path, zone: str) -> list[str]:
    return sorted(
        path.name.removeprefix("date=").removesuffix(".parquet")
        for path in (home / zone).rglob("*.parquet")
    )


@pytest.mark.parametrize(
    ("fault", "cause"),
    [("500", "HTTP 500"), ("reset", "ConnectionError")],
)
def test_a_minute_long_outage_mid_range_fails_naming_the_day_and_a_rerun_completes(
    tmp_path, fault, cause
):
    clocks.SHARED.now = 1_700_000_000.0
    with BinanceStandIn(
        {("BTCUSDT", "1m"): three_days()}, wall_clock=clocks.SHARED, clock_ms=lambda: JAN_4_MS
    ) as standin:
        # pages 1-2 end at 2024-01-02 09:19; the third (from 09:19:00.001) meets the outage
        standin.outage(fault, seconds=60, after=2)
        failed = run_with_shared_clock(tmp_path, standin, "2024-01-01", "2024-01-03")
        served_during_outage = [r for r in standin.requests if r["fault"] == fault]

        assert not failed.success
        message = failure_text(failed)
        assert "GET /api/v3/klines BTCUSDT 1m from 2024-01-02T09:19:00Z" in message
        assert "failed after 6 attempts" in message and cause in message
        assert len(served_during_outage) == 6
        assert sum(clocks.SHARED.sleeps) < 60  # the retry budget is shorter than the outage
        assert stored_days(tmp_path, "raw") == ["2024-01-01"]
        assert stored_days(tmp_path, "transformed") == []
        assert not (tmp_path / "cryptodb.duckdb").exists()

        clocks.SHARED.now += 60
        assert run_with_shared_clock(tmp_path, standin, "2024-01-01", "2024-01-03").success
    with duckdb.connect(str(tmp_path / "cryptodb.duckdb"), read_only=True) as connection:
        assert connection.execute(
            "select count(*), count(distinct open_time) from cryptodb.cryptoschema.btcusdt"
        ).fetchone() == (4320, 4320)


LOCAL_NOW_MS = JAN_1_MS + 86_400_000 + (23 * 60 + 57) * MINUTE_MS + 30_000
"""2024-01-02 23:57:30 UTC on the pipeline's clock: a server 5 minutes ahead is in the next day."""


@pytest.mark.parametrize(
    ("server_ahead_minutes", "newest_closed"),
    [(5, "2024-01-02 23:59:00"), (-5, "2024-01-02 23:51:00")],
)
def test_a_skewed_server_clock_stores_every_closed_candle_and_no_open_one(
    tmp_path, monkeypatch, server_ahead_minutes, newest_closed
):
    """The pipeline's clock and the server's are both fixed, so the test means the same at any
    hour (on the wall clock it failed between 23:55 and 24:00 UTC)."""
    monkeypatch.setattr(
        klines_assets, "_utc_now", lambda: datetime.fromtimestamp(LOCAL_NOW_MS / 1000, timezone.utc)
    )
    rows = synthetic_klines("1m", JAN_1_MS, JAN_4_MS)
    server_now_ms = LOCAL_NOW_MS + server_ahead_minutes * MINUTE_MS
    with BinanceStandIn({("BTCUSDT", "1m"): rows}, clock_ms=lambda: server_now_ms) as standin:
        result = materialize_days(
            local_resources(
                {
                    "CRYPTO_ASSETS_HOME": str(tmp_path),
                    "BINANCE_BASE_URL": standin.url,
                    "BINANCE_ARCHIVE_URL": "",
                }
            ),
            "2024-01-02",
        )
    assert result.success
    with duckdb.connect(str(tmp_path / "cryptodb.duckdb"), read_only=True) as connection:
        count, first, last = connection.execute(
            "select count(*), min(open_time)::varchar, max(open_time)::varchar"
            " from cryptodb.cryptoschema.btcusdt"
        ).fetchone()
    assert (first, last) == ("2024-01-02 00:00:00", newest_closed)
    assert count == 1440 if server_ahead_minutes > 0 else 1432  # nothing skipped before it


MARCH_24_MS = 1_679_616_000_000  # 2023-03-24T00:00:00Z
GAP_FIRST_MS = MARCH_24_MS + (12 * 60 + 39) * MINUTE_MS  # 12:39
GAP_LAST_MS = MARCH_24_MS + (13 * 60 + 59) * MINUTE_MS  # 13:59


def test_a_maintenance_gap_loads_the_day_and_warns_naming_its_first_and_last_minute(tmp_path):
    """Binance spot stopped on 2023-03-24 from about 12:39 to 14:00 UTC."""
    rows = [
        row
        for row in synthetic_klines("1m", MARCH_24_MS, MARCH_24_MS + 86_400_000)
        if not GAP_FIRST_MS <= row[0] <= GAP_LAST_MS
    ]
    with BinanceStandIn(
        {("BTCUSDT", "1m"): rows}, clock_ms=lambda: MARCH_24_MS + 86_400_000 + 30_000
    ) as standin:
        result = materialize_days(
            local_resources({"CRYPTO_ASSETS_HOME": str(tmp_path), "BINANCE_BASE_URL": standin.url}),
            "2023-03-24",
        )
    assert result.success
    complete = check_results(result)["complete_day"]
    assert not complete.passed
    assert complete.severity.value == "WARN"
    assert complete.metadata["offending_rows"].value == 81
    assert complete.metadata["first_offending_open_time"].value == "2023-03-24T12:39:00Z"
    assert complete.metadata["last_offending_open_time"].value == "2023-03-24T13:59:00Z"
    with duckdb.connect(str(tmp_path / "cryptodb.duckdb"), read_only=True) as connection:
        assert connection.execute(
            "select count(*) from cryptodb.cryptoschema.btcusdt"
        ).fetchone() == (1359,)


JAN_2_MS = 1_704_153_600_000  # 2024-01-02T00:00:00Z


def test_duplicate_and_off_grid_candles_are_named_and_the_loaded_day_survives(
    tmp_path, synthetic_standin, synthetic_rows
):
    resources = local_resources(
        {"CRYPTO_ASSETS_HOME": str(tmp_path), "BINANCE_BASE_URL": synthetic_standin.url}
    )
    assert materialize_days(resources, "2024-01-02").success
    before = warehouse_day(tmp_path)

    duplicate = list(synthetic_rows[1440 + 100])  # served in the 01:40 slot as a second 01:39
    duplicate[0], duplicate[6] = JAN_2_MS + 99 * MINUTE_MS, JAN_2_MS + 100 * MINUTE_MS - 1
    duplicate[4] = "1.5"
    off_grid = list(synthetic_rows[1440 + 200])  # 03:20:30 instead of 03:20
    off_grid[0], off_grid[6] = off_grid[0] + 30_000, off_grid[6] + 30_000
    synthetic_standin.replace_kline("BTCUSDT", "1m", JAN_2_MS + 100 * MINUTE_MS, duplicate)
    synthetic_standin.replace_kline("BTCUSDT", "1m", JAN_2_MS + 200 * MINUTE_MS, off_grid)

    result = materialize_days(resources, "2024-01-02")

    assert not result.success
    unique = check_results(result)["open_time_unique_on_grid"]
    assert not unique.passed
    assert unique.metadata["offending_open_times"].value == [
        "2024-01-02T01:39:00Z",
        "2024-01-02T01:39:00Z",
        "2024-01-02T03:20:30Z",
    ]
    after = warehouse_day(tmp_path)
    pd.testing.assert_frame_equal(after, before)
    assert len(after) == 1440
    assert (after["open_time"].dt.second == 0).all()


def warehouse_day(home: Path) -> pd.DataFrame:
    with duckdb.connect(str(home / "cryptodb.duckdb"), read_only=True) as connection:
        return connection.execute(
            "select * from cryptodb.cryptoschema.btcusdt order by open_time"
        ).fetchdf()
