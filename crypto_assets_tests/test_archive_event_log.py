"""The local instance's batching event log keeps what Dagster's own SQLite storage records:
per-day materializations, per-day planned check rows, and failed days of a failed run."""

import shutil
import sqlite3
from pathlib import Path

import dagster as dg
import pytest

from crypto_assets_tests.binance_standin import BinanceStandIn
from crypto_assets_tests.conftest import synthetic_days
from crypto_assets_tests.lineage import materialize_days
from crypto_assets_tests.test_archive_lineage import DAYS, resources

LOCAL_YAML = Path(__file__).resolve().parents[1] / "deploy" / "dagster.local.yaml"


@pytest.fixture
def batching_instance(tmp_path, monkeypatch):
    """A DAGSTER_HOME with the project's local dagster.yaml, as `make` sets it up."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(LOCAL_YAML, home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "1000")  # what the storage sets; undone after
    with dg.DagsterInstance.from_config(str(home)) as instance:
        yield instance


def check_rows(instance: dg.DagsterInstance, check_name: str) -> list[tuple]:
    index = instance.event_log_storage.conn_string_for_shard("index").removeprefix("sqlite:///")
    with sqlite3.connect(index) as connection:
        return connection.execute(
            "select partition, execution_status from asset_check_executions"
            " where check_name = ? and partition is not null order by partition",
            [check_name],
        ).fetchall()


def test_a_range_run_records_every_day_through_batches(tmp_path, batching_instance):
    assert type(batching_instance.event_log_storage).__name__ == "BatchingSqliteEventLogStorage"
    rows = synthetic_days(DAYS[0], 3, seed=5)
    with BinanceStandIn({("BTCUSDT", "1m"): rows}) as standin:
        result = materialize_days(
            resources(tmp_path / "home", standin), DAYS[0], DAYS[2], instance=batching_instance
        )
    assert result.success
    for asset in ("raw_klines", "clean_klines", "snowflake_btcusdt"):
        materialized = batching_instance.get_materialized_partitions(dg.AssetKey(asset))
        assert materialized == set(DAYS), asset
        record = batching_instance.get_latest_materialization_event(dg.AssetKey(asset))
        assert record.run_id == result.run_id and record.dagster_event.partition == DAYS[2]
    assert check_rows(batching_instance, "high_at_or_above_open_and_close") == [
        (day, "SUCCEEDED") for day in DAYS
    ]


def test_days_of_a_failed_run_show_as_failed(tmp_path, batching_instance):
    rows = synthetic_days(DAYS[0], 3, seed=5)
    with BinanceStandIn({("BTCUSDT", "1m"): rows}) as standin:
        standin.set_archive_variant(DAYS[1], "bad_checksum")
        result = materialize_days(
            resources(tmp_path / "home", standin), DAYS[0], DAYS[2], instance=batching_instance
        )
    assert not result.success
    storage = batching_instance.event_log_storage
    unfinished = (
        storage.get_latest_asset_partition_materialization_attempts_without_materializations(
            dg.AssetKey("raw_klines")
        )
    )
    assert set(unfinished) == set(DAYS)  # planned in a run that failed: the UI shows them failed
    assert batching_instance.get_run_by_id(result.run_id).status == dg.DagsterRunStatus.FAILURE
