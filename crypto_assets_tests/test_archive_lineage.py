"""The lineage with the archive as raw_klines' source, and long ranges committed by month."""

import hashlib
from datetime import datetime, timedelta, timezone

import dagster as dg
import duckdb
import pandas as pd
import pytest
import requests

from crypto_assets.klines.archive_checks import archive_audit_job
from crypto_assets.klines.frames import DayFrames
from crypto_assets.resources import local_resources
from crypto_assets.storage.parquet import partition_object_key
from crypto_assets.storage.warehouse import TABLE_METADATA_KEY
from crypto_assets_tests.binance_standin import BinanceStandIn
from crypto_assets_tests.conftest import synthetic_days
from crypto_assets_tests.lineage import (
    CHECKS,
    LINEAGE,
    check_results,
    materialize_days,
    warehouse_day,
)

DAYS = ("2024-12-31", "2025-01-01", "2025-01-02")  # ms era, us era, and a day the archive lacks
WAREHOUSE_QUERY = "select * from cryptodb.cryptoschema.btcusdt order by open_time"


def resources(home, standin: BinanceStandIn, archive: bool = True) -> dict:
    return local_resources(
        {
            "CRYPTO_ASSETS_HOME": str(home),
            "BINANCE_BASE_URL": standin.url,
            "BINANCE_ARCHIVE_URL": standin.url if archive else "",
        }
    )


def table(home, sql: str = WAREHOUSE_QUERY) -> pd.DataFrame:
    with duckdb.connect(str(home / "cryptodb.duckdb"), read_only=True) as connection:
        return connection.execute(sql).fetchdf()


def raw_day(home, day: str) -> pd.DataFrame:
    return pd.read_parquet(home / "raw" / partition_object_key("BTCUSDT", "1m", day))


@pytest.fixture
def standin():
    rows = synthetic_days(DAYS[0], len(DAYS), seed=5)
    with BinanceStandIn({("BTCUSDT", "1m"): rows}) as server:
        server.set_archive_variant(DAYS[2], "missing")
        yield server


def test_archived_days_load_verified_and_equal_what_rest_loads(tmp_path, standin):
    from_archive, from_rest = tmp_path / "archive", tmp_path / "rest"

    result = materialize_days(resources(from_archive, standin), DAYS[0], DAYS[-1])
    assert result.success
    assert materialize_days(resources(from_rest, standin, archive=False), DAYS[0], DAYS[-1]).success

    for day in DAYS[:2]:
        stored = raw_day(from_archive, day)
        url = f"{standin.url}/data/spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-{day}.zip"
        assert stored.attrs["source"] == "archive"
        assert stored.attrs["source_url"] == url
        assert (
            stored.attrs["sha256"]
            == hashlib.sha256(requests.get(url, timeout=10).content).hexdigest()
        )
    assert raw_day(from_archive, DAYS[2]).attrs["source"] == "rest"  # the archive's 404
    for day in DAYS:
        pd.testing.assert_frame_equal(
            raw_day(from_archive, day).drop(columns="fetched_at"),
            raw_day(from_rest, day).drop(columns="fetched_at"),
        )
    loaded = table(from_archive)
    assert len(loaded) == 3 * 1440 and loaded["open_time"].is_unique
    pd.testing.assert_frame_equal(loaded, table(from_rest))

    raw_materializations = [
        event.event_specific_data.materialization
        for event in result.all_events
        if event.event_type_value == "ASSET_MATERIALIZATION"
        and event.asset_key == dg.AssetKey("raw_klines")
    ]
    assert [m.partition for m in raw_materializations] == list(DAYS)
    assert raw_materializations[0].metadata["days_by_source"].value == {"archive": 2, "rest": 1}
    assert raw_materializations[0].metadata["days_not_from_archive"].value == [DAYS[2]]


def test_one_archived_day_shows_its_file_and_hash(tmp_path, standin):
    result = materialize_days(resources(tmp_path, standin), DAYS[1])
    metadata = result.asset_materializations_for_node("raw_klines")[0].metadata
    assert metadata["source"].value == "archive"
    assert metadata["source_url"].value.endswith("/BTCUSDT-1m-2025-01-01.zip")
    assert metadata["sha256"].value == raw_day(tmp_path, DAYS[1]).attrs["sha256"]


def test_a_day_failing_its_checksum_fails_the_run_and_is_not_stored(tmp_path, standin):
    standin.set_archive_variant(DAYS[1], "bad_checksum")
    result = materialize_days(resources(tmp_path, standin), DAYS[0], DAYS[1])

    assert not result.success
    failure = next(event for event in result.all_events if event.event_type_value == "STEP_FAILURE")
    message = failure.step_failure_data.error.cause.message
    assert "BTCUSDT-1m-2025-01-01.zip" in message and "its CHECKSUM says" in message
    assert not (tmp_path / "raw" / partition_object_key("BTCUSDT", "1m", DAYS[1])).exists()
    assert (
        not (tmp_path / "cryptodb.duckdb").exists()
        or table(
            tmp_path,
            "select count(*) as n from information_schema.tables where table_name='btcusdt'",
        )["n"].iloc[0]
        == 0
    )


def test_yesterday_comes_from_rest_even_with_an_archive(tmp_path):
    yesterday = (datetime.now(timezone.utc) - timedelta(days=1)).date().isoformat()
    with BinanceStandIn({("BTCUSDT", "1m"): synthetic_days(yesterday, 1)}) as server:
        assert materialize_days(resources(tmp_path, server), yesterday).success
        assert not [entry for entry in server.requests if entry["path"].startswith("/data/")]
    assert raw_day(tmp_path, yesterday).attrs["source"] == "rest"
    assert len(table(tmp_path)) == 1440


# ------------------------------------------------------------------ long ranges commit by month

LONG_RANGE = dg.DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-03-01")
FIRST, LAST = "2024-01-30", "2024-02-05"  # 7 days over a month boundary
LONG_FIRST, LONG_LAST = "2024-01-01", "2024-02-05"  # 36 days: commits per month


def month_loader(seed: int, fail_on: str | None) -> dg.AssetsDefinition:
    @dg.asset(
        name="snowflake_btcusdt",
        partitions_def=LONG_RANGE,
        io_manager_key="warehouse_io_manager",
        metadata={"partition_expr": "open_time", TABLE_METADATA_KEY: "btcusdt"},
    )
    def load(context: dg.AssetExecutionContext):
        keys = list(context.partition_keys)
        rows = synthetic_days(keys[0], len(keys), seed=seed)

        def days():
            for position, key in enumerate(keys):
                frame = warehouse_day(rows[position * 1440 : (position + 1) * 1440])
                if key == fail_on:
                    frame["high"] = frame["high"].astype(str) + "x"
                yield key, frame

        return DayFrames(days())

    return load


def load_range(home, first: str, last: str, seed: int, fail_on: str | None = None) -> bool:
    io_manager = local_resources({"CRYPTO_ASSETS_HOME": str(home)})["warehouse_io_manager"]
    return dg.materialize(
        [month_loader(seed, fail_on)],
        resources={"warehouse_io_manager": io_manager},
        tags={
            "dagster/asset_partition_range_start": first,
            "dagster/asset_partition_range_end": last,
        },
        raise_on_error=False,
    ).success


def closes_by_month(home) -> dict[str, float]:
    sums = table(
        home,
        "select strftime(open_time, '%Y-%m') as month, sum(close) as close"
        " from cryptodb.cryptoschema.btcusdt group by 1 order by 1",
    )
    return dict(zip(sums["month"], sums["close"], strict=True))


def test_a_range_of_a_month_or_less_is_replaced_in_one_transaction(tmp_path):
    assert load_range(tmp_path, FIRST, LAST, seed=7)
    before = closes_by_month(tmp_path)
    assert not load_range(tmp_path, FIRST, LAST, seed=11, fail_on=LAST)
    assert closes_by_month(tmp_path) == before


def test_a_long_range_commits_whole_months_so_a_failure_keeps_the_rest(tmp_path):
    assert load_range(tmp_path, LONG_FIRST, LONG_LAST, seed=7)
    before = closes_by_month(tmp_path)
    assert len(table(tmp_path)) == 36 * 1440

    assert not load_range(tmp_path, LONG_FIRST, LONG_LAST, seed=11, fail_on=LONG_LAST)

    after = closes_by_month(tmp_path)
    assert len(table(tmp_path)) == 36 * 1440  # no day lost or doubled
    assert after["2024-02"] == before["2024-02"]  # the failed month is as it was
    assert after["2024-01"] != before["2024-01"]  # January, committed before it, is new
    new_january = synthetic_days(LONG_FIRST, 31, seed=11)
    assert after["2024-01"] == pytest.approx(sum(float(row[4]) for row in new_january))


# ------------------------------------------------------------------ archive checks


def audit(home, standin: BinanceStandIn, first: str, last: str) -> dg.AssetCheckEvaluation:
    definitions = dg.Definitions(
        assets=LINEAGE,
        asset_checks=CHECKS,
        jobs=[archive_audit_job],
        resources=resources(home, standin),
    )
    result = definitions.resolve_job_def("archive_audit").execute_in_process(
        tags={
            "dagster/asset_partition_range_start": first,
            "dagster/asset_partition_range_end": last,
        },
        raise_on_error=False,
    )
    return check_results(result)["archive_files_unchanged"]


def test_a_republished_archive_file_is_named_and_refetched(tmp_path, standin):
    assert materialize_days(resources(tmp_path, standin), DAYS[0], DAYS[1]).success
    stored = raw_day(tmp_path, DAYS[1]).attrs["sha256"]
    assert audit(tmp_path, standin, DAYS[0], DAYS[1]).passed

    standin.set_archive_variant(DAYS[1], "republished")
    url = f"{standin.url}/data/spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-{DAYS[1]}.zip"
    republished = hashlib.sha256(requests.get(url, timeout=10).content).hexdigest()
    found = audit(tmp_path, standin, DAYS[0], DAYS[1])

    assert not found.passed and found.severity == dg.AssetCheckSeverity.WARN
    assert found.metadata["republished_days"].value == {
        DAYS[1]: {"stored": stored, "published": republished}
    }
    assert materialize_days(resources(tmp_path, standin), DAYS[1]).success
    assert raw_day(tmp_path, DAYS[1]).attrs["sha256"] == republished
    assert audit(tmp_path, standin, DAYS[0], DAYS[1]).passed


def test_an_archived_day_that_disagrees_with_rest_is_named_with_both_values(tmp_path, standin):
    standin.set_archive_variant(DAYS[0], "republished")  # its first candle's trades, plus one
    result = materialize_days(resources(tmp_path, standin), DAYS[0], DAYS[1])

    assert result.success  # a WARN: the day loads as the archive has it
    found = check_results(result)["archive_matches_rest"]
    assert not found.passed
    assert found.metadata["days_compared"].value == [DAYS[0], DAYS[1]]
    rest_trades = standin._rows[("BTCUSDT", "1m")][0][8]
    assert found.metadata["differences"].value == [
        f"{DAYS[0]} 2024-12-31T00:00:00Z num_trades: archive '{rest_trades + 1}',"
        f" REST '{rest_trades}' (1 candles differ)"
    ]
