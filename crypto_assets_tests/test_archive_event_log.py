"""The local instance's event log keeps what Dagster's own SQLite storage records: per-day
materializations, per-day planned check rows, and failed days of a failed run."""

import sqlite3

import dagster as dg
import pytest

from crypto_assets_tests.binance_standin import BinanceStandIn
from crypto_assets_tests.conftest import synthetic_days
from crypto_assets_tests.lineage import materialize_days
from crypto_assets_tests.test_archive_lineage import DAYS, resources


def check_rows(instance: dg.DagsterInstance, check_name: str) -> list[tuple]:
    with sqlite3.connect(instance.event_log_storage.get_db_path()) as connection:
        return connection.execute(
            "select partition, execution_status from asset_check_executions"
            " where check_name = ? and partition is not null order by partition",
            [check_name],
        ).fetchall()


def test_a_range_run_records_every_day_through_batches(tmp_path, local_instance):
    assert type(local_instance.event_log_storage).__name__ == "LocalEventLogStorage"
    rows = synthetic_days(DAYS[0], 3, seed=5)
    with BinanceStandIn({("BTCUSDT", "1m"): rows}) as standin:
        result = materialize_days(
            resources(tmp_path / "home", standin), DAYS[0], DAYS[2], instance=local_instance
        )
    assert result.success
    for asset in ("raw_klines", "clean_klines", "snowflake_btcusdt"):
        materialized = local_instance.get_materialized_partitions(dg.AssetKey(asset))
        assert materialized == set(DAYS), asset
        record = local_instance.get_latest_materialization_event(dg.AssetKey(asset))
        assert record.run_id == result.run_id and record.dagster_event.partition == DAYS[2]
    assert check_rows(local_instance, "high_at_or_above_open_and_close") == [
        (day, "SUCCEEDED") for day in DAYS
    ]


def test_days_of_a_failed_run_show_as_failed(tmp_path, local_instance):
    rows = synthetic_days(DAYS[0], 3, seed=5)
    with BinanceStandIn({("BTCUSDT", "1m"): rows}) as standin:
        standin.set_archive_variant(DAYS[1], "bad_checksum")
        result = materialize_days(
            resources(tmp_path / "home", standin), DAYS[0], DAYS[2], instance=local_instance
        )
    assert not result.success
    storage = local_instance.event_log_storage
    unfinished = (
        storage.get_latest_asset_partition_materialization_attempts_without_materializations(
            dg.AssetKey("raw_klines")
        )
    )
    assert set(unfinished) == set(DAYS)  # planned in a run that failed: the UI shows them failed
    assert local_instance.get_run_by_id(result.run_id).status == dg.DagsterRunStatus.FAILURE


@pytest.mark.parametrize("days", [1, 3])
def test_a_range_run_leaves_no_day_of_any_check_planned(tmp_path, local_instance, days):
    """A backfill of one day is a range run too: its results carry no partition either."""
    rows = synthetic_days(DAYS[0], days, seed=5)
    with BinanceStandIn({("BTCUSDT", "1m"): rows}) as standin:
        result = materialize_days(
            resources(tmp_path / "home", standin),
            DAYS[0],
            DAYS[days - 1],
            instance=local_instance,
        )
    assert result.success
    with sqlite3.connect(local_instance.event_log_storage.get_db_path()) as connection:
        per_day = connection.execute(
            "select partition, execution_status, count(*) from asset_check_executions"
            " where partition is not null group by 1, 2 order by 1"
        ).fetchall()
    assert per_day == [(day, "SUCCEEDED", 12) for day in DAYS[:days]]
