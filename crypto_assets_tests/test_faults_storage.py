"""Faults where values are stored: an unreadable Parquet object, a DuckDB file another process
holds, Snowflake failing inside a range replace, S3 refusing writes half way."""

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pytest
import snowflake.connector

from crypto_assets.klines.assets import clean_klines, snowflake_btcusdt
from crypto_assets.resources import local_resources, prod_resources
from crypto_assets.storage.parquet import partition_object_key
from crypto_assets.storage.warehouse_duckdb import (
    DuckDBWarehouseIOManager,
    connect_waiting_for_lock,
)
from crypto_assets.storage.warehouse_snowflake import SnowflakeWarehouseIOManager
from crypto_assets_tests.conftest import synthetic_days
from crypto_assets_tests.lineage import (
    failure_text,
    lineage_definitions,
    materialize_days,
    warehouse_day,
    warehouse_loader,
)
from crypto_assets_tests.prod_stack import RAW_BUCKET, TRANSFORMED_BUCKET, s3_client
from crypto_assets_tests.s3_proxy import RefusingS3Proxy

pytestmark = pytest.mark.faults

RAW_OBJECT = "klines/symbol=BTCUSDT/interval=1m/date=2024-01-02.parquet"


def test_a_corrupt_raw_object_fails_clean_klines_naming_it_and_rematerializing_repairs_it(
    tmp_path, synthetic_standin
):
    resources = local_resources(
        {"CRYPTO_ASSETS_HOME": str(tmp_path), "BINANCE_BASE_URL": synthetic_standin.url}
    )
    assert materialize_days(resources, "2024-01-02").success
    raw_object = tmp_path / "raw" / RAW_OBJECT
    raw_object.write_bytes(raw_object.read_bytes()[:1000])  # a torn copy, a full disk

    job = lineage_definitions(resources).resolve_implicit_global_asset_job_def()
    downstream = job.execute_in_process(
        partition_key="2024-01-02",
        asset_selection=[clean_klines.key, snowflake_btcusdt.key],
        raise_on_error=False,
    )
    assert not downstream.success
    message = failure_text(downstream)
    assert f"raw_klines for 2024-01-02 at {raw_object} is not readable Parquet" in message
    assert "Materialize raw_klines for 2024-01-02 again" in message

    assert materialize_days(resources, "2024-01-02").success
    assert len(pd.read_parquet(raw_object)) == 1440


HOLDER = """
import sys, duckdb
connection = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == "reader")
print("holding", flush=True)
sys.stdin.read()
"""
HOLDER_SECRET = "--password=never-in-a-message"
"""On the holder's command line, as a client's credentials can be: DuckDB's lock error names
the holder's program, and the load's message must not add the command line to it."""


def warehouse_rows(database: Path) -> list[tuple]:
    with duckdb.connect(str(database), read_only=True) as connection:
        return connection.execute(
            "select cast(open_time as date)::varchar, count(*), sum(close)"
            " from cryptodb.cryptoschema.btcusdt group by 1 order by 1"
        ).fetchall()


def step_seconds(instance: dg.DagsterInstance, run_id: str, step_key: str) -> float:
    """Seconds from the step's start to its end (success or failure), from the event log."""
    times = [
        entry.timestamp
        for entry in instance.all_logs(run_id)
        if entry.dagster_event is not None
        and entry.dagster_event.step_key == step_key
        and entry.dagster_event.event_type_value in ("STEP_START", "STEP_FAILURE", "STEP_SUCCESS")
    ]
    assert len(times) == 2, times
    return times[1] - times[0]


@pytest.mark.parametrize("holder", ["reader", "writer"])
def test_a_held_duckdb_file_is_waited_for_then_fails_naming_the_holder(
    tmp_path, synthetic_standin, holder
):
    resources = {
        **local_resources(
            {"CRYPTO_ASSETS_HOME": str(tmp_path), "BINANCE_BASE_URL": synthetic_standin.url}
        ),
        "warehouse_io_manager": DuckDBWarehouseIOManager(
            database=str(tmp_path / "cryptodb.duckdb"), schema="cryptoschema", lock_wait_seconds=1.5
        ),
    }
    assert materialize_days(resources, "2024-01-01").success
    database = tmp_path / "cryptodb.duckdb"
    before = warehouse_rows(database)

    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(database), holder, HOLDER_SECRET],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout.readline().strip() == "holding"
        with dg.DagsterInstance.ephemeral() as instance:
            result = materialize_days(resources, "2024-01-01", "2024-01-02", instance)
            warehouse_step = step_seconds(instance, result.run_id, "snowflake_btcusdt")
    finally:
        process.communicate("", timeout=30)

    assert not result.success
    assert warehouse_step >= 1.5  # the wait is inside it
    message = failure_text(result)
    program = Path(os.path.realpath(sys.executable)).name  # python3.11, as /proc/PID/exe names it
    assert (
        f"The DuckDB warehouse {database} is held by process {process.pid} ({program})"
        " and stayed locked for 1.5s, so nothing was loaded." in message
    )
    assert HOLDER_SECRET not in message
    assert warehouse_rows(database) == before
    assert [day for day, _, _ in before] == ["2024-01-01"]

    assert materialize_days(resources, "2024-01-01", "2024-01-02").success
    assert [(day, rows) for day, rows, _ in warehouse_rows(database)] == [
        ("2024-01-01", 1440),
        ("2024-01-02", 1440),
    ]


def hold(database: Path, holder: str) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(database), holder],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout.readline().strip() == "holding"
    return process


def test_the_wait_for_a_held_duckdb_file_lasts_its_limit_then_fails(tmp_path):
    """The wait alone is timed, not the run around it: it gives up at the limit, not before and
    not a pause later."""
    database = tmp_path / "cryptodb.duckdb"
    duckdb.connect(str(database)).close()
    holder = hold(database, "writer")
    try:
        started = time.monotonic()
        with pytest.raises(dg.Failure, match=r"stayed locked for 1\.5s"):
            connect_waiting_for_lock(str(database), {}, wait_seconds=1.5)
        waited = time.monotonic() - started
    finally:
        holder.communicate("", timeout=30)
    assert 1.5 <= waited < 1.5 + 1.0


def test_a_duckdb_file_released_during_the_wait_is_opened_before_the_limit(tmp_path):
    database = tmp_path / "cryptodb.duckdb"
    duckdb.connect(str(database)).close()
    holder = hold(database, "reader")
    release = threading.Timer(0.5, holder.communicate, kwargs={"input": "", "timeout": 30})
    release.start()
    started = time.monotonic()
    connection = connect_waiting_for_lock(str(database), {}, wait_seconds=20)
    waited = time.monotonic() - started
    connection.close()
    release.join()
    assert holder.returncode == 0
    assert 0.5 <= waited < 20


PARTITIONS = dg.DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-01-04")


def snowflake_loader(break_second_day: bool) -> dg.AssetsDefinition:
    """Hands the warehouse two days; broken, the second day lacks its symbol, which the
    staging table takes and the NOT NULL target refuses inside the replace transaction."""
    rows = synthetic_days("2024-01-01", 2, seed=11 if break_second_day else 7)

    def days() -> list[tuple[str, pd.DataFrame]]:
        first, second = warehouse_day(rows[:1440]), warehouse_day(rows[1440:])
        if break_second_day:
            second["symbol"] = None
        return [("2024-01-01", first), ("2024-01-02", second)]

    return warehouse_loader(PARTITIONS, days)


def snowflake_query(sql: str) -> list[tuple]:
    connection = snowflake.connector.connect(database="CRYPTODB", schema="CRYPTOSCHEMA")
    try:
        return connection.cursor().execute(sql).fetchall()
    finally:
        connection.close()


def test_snowflake_failing_inside_a_range_replace_rolls_back_and_drops_its_staging_table(
    fake_snowflake,
):
    io_manager = SnowflakeWarehouseIOManager(
        account="testaccount",
        user="pipeline",
        password="pw",
        warehouse="CRYPTO_WH",
        database="CRYPTODB",
        schema="CRYPTOSCHEMA",
    )

    def replace(broken: bool) -> dg.ExecuteInProcessResult:
        return dg.materialize(
            [snowflake_loader(broken)],
            resources={"warehouse_io_manager": io_manager},
            tags={
                "dagster/asset_partition_range_start": "2024-01-01",
                "dagster/asset_partition_range_end": "2024-01-02",
            },
            raise_on_error=False,
        )

    assert replace(broken=False).success
    summary = "SELECT COUNT(*), SUM(CLOSE) FROM CRYPTODB.CRYPTOSCHEMA.BTCUSDT"
    before = snowflake_query(summary)
    assert before[0][0] == 2880

    failed = replace(broken=True)

    assert not failed.success
    assert "NOT NULL constraint failed" in failure_text(failed)
    assert snowflake_query(summary) == before
    assert (
        snowflake_query(
            "SELECT table_name FROM information_schema.tables WHERE table_name LIKE '%_LOAD_%'"
        )
        == []
    )


def test_s3_refusing_writes_half_way_fails_naming_the_object_and_loads_nothing(
    prod_env, fake_snowflake, s3_endpoint
):
    with RefusingS3Proxy(s3_endpoint, TRANSFORMED_BUCKET, allowed_puts=1) as proxy:
        environ = {**prod_env, "AWS_ENDPOINT_URL_S3": proxy.url}
        result = materialize_days(prod_resources(environ), "2024-01-01", "2024-01-03")

    assert not result.success
    refused = f"s3://{TRANSFORMED_BUCKET}/{partition_object_key('BTCUSDT', '1m', '2024-01-02')}"
    assert f"Could not write {refused}: AccessDenied" in failure_text(result)
    assert proxy.refused == [
        f"/{TRANSFORMED_BUCKET}/" + partition_object_key("BTCUSDT", "1m", "2024-01-02")
    ]
    s3 = s3_client(s3_endpoint)
    raw_keys = [item["Key"] for item in s3.list_objects_v2(Bucket=RAW_BUCKET)["Contents"]]
    assert len(raw_keys) == 3
    clean_keys = [item["Key"] for item in s3.list_objects_v2(Bucket=TRANSFORMED_BUCKET)["Contents"]]
    assert clean_keys == [partition_object_key("BTCUSDT", "1m", "2024-01-01")]
    assert snowflake_query("SELECT COUNT(*) FROM CRYPTODB.CRYPTOSCHEMA.BTCUSDT") == [(0,)]
