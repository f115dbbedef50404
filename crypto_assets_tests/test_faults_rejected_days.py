"""A day that fails a blocking check stays in the clean zone, marked: no later warehouse-only
materialization loads it, and a good rewrite of the day clears the mark."""

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import snowflake.connector

from crypto_assets.klines.assets import clean_klines, raw_klines, snowflake_btcusdt
from crypto_assets.resources import local_resources, prod_resources
from crypto_assets.storage.parquet import partition_object_key
from crypto_assets.storage.rejected_days import rejection_mark
from crypto_assets_tests.binance_standin import BinanceStandIn
from crypto_assets_tests.conftest import synthetic_days, utc_ms
from crypto_assets_tests.lineage import (
    CHECKS,
    LINEAGE,
    check_results,
    failure_text,
    materialize_days,
)
from crypto_assets_tests.prod_stack import TRANSFORMED_BUCKET, s3_client

pytestmark = pytest.mark.faults

SWAPPED_HIGH_LOW = {
    "low_at_or_below_open_and_close": {
        "offending_rows": 1,
        "first_offending_open_times": ["2024-01-02T01:40:00Z"],
    },
    "high_at_or_above_open_and_close": {
        "offending_rows": 1,
        "first_offending_open_times": ["2024-01-02T01:40:00Z"],
    },
}


def local(tmp_path: Path, standin: BinanceStandIn) -> dict:
    return local_resources({"CRYPTO_ASSETS_HOME": str(tmp_path), "BINANCE_BASE_URL": standin.url})


def materialize_only(
    resources: dict, assets: list[dg.AssetsDefinition], first_day: str, last_day: str | None = None
) -> dg.ExecuteInProcessResult:
    """Only the given assets (and their checks) over [first_day, last_day], in one run."""
    return dg.materialize(
        [*LINEAGE, *CHECKS],
        resources=resources,
        selection=dg.AssetSelection.assets(*assets),
        tags={
            "dagster/asset_partition_range_start": first_day,
            "dagster/asset_partition_range_end": last_day or first_day,
        },
        raise_on_error=False,
    )


def clean_object(tmp_path: Path, day: str) -> Path:
    return tmp_path / "transformed" / partition_object_key("BTCUSDT", "1m", day)


def warehouse_days(tmp_path: Path) -> list[tuple[str, int]]:
    """Rows per day in the warehouse; none when the load never created the table."""
    database = tmp_path / "cryptodb.duckdb"
    if not database.exists():
        return []
    with duckdb.connect(str(database), read_only=True) as connection:
        if not connection.execute(
            "select count(*) from information_schema.tables where table_name = 'btcusdt'"
        ).fetchall()[0][0]:
            return []
        return connection.execute(
            "select cast(open_time as date)::varchar, count(*)"
            " from cryptodb.cryptoschema.btcusdt group by 1 order by 1"
        ).fetchall()


def swap_high_low(standin: BinanceStandIn, row: list) -> None:
    bad = list(row)
    bad[2], bad[3] = bad[3], bad[2]
    standin.replace_kline("BTCUSDT", "1m", bad[0], bad)


def test_a_rejected_day_is_never_loaded_until_a_good_rewrite(
    tmp_path, synthetic_standin, synthetic_rows
):
    resources = local(tmp_path, synthetic_standin)
    good = synthetic_rows[1440 + 100]
    swap_high_low(synthetic_standin, good)

    daily = materialize_days(resources, "2024-01-02")

    assert not daily.success
    assert not check_results(daily)["low_at_or_below_open_and_close"].passed
    stored = clean_object(tmp_path, "2024-01-02")
    assert pq.read_metadata(stored).num_rows == 1440  # kept for inspection
    assert rejection_mark(pq.read_metadata(stored).metadata) == SWAPPED_HIGH_LOW
    assert warehouse_days(tmp_path) == []

    later = materialize_only(resources, [snowflake_btcusdt], "2024-01-02")

    assert not later.success
    message = failure_text(later)
    assert (
        f"clean_klines for 2024-01-02 failed a blocking check when written, so it is not read"
        f" onward and nothing was loaded: 2024-01-02 at {stored} failed"
        " low_at_or_below_open_and_close (1 candle, first at 2024-01-02T01:40:00Z),"
        " high_at_or_above_open_and_close (1 candle, first at 2024-01-02T01:40:00Z)."
        " Correct the source and materialize clean_klines for that day again."
    ) in message
    assert warehouse_days(tmp_path) == []

    synthetic_standin.replace_kline("BTCUSDT", "1m", good[0], good)
    assert materialize_only(resources, [raw_klines, clean_klines], "2024-01-02").success
    assert rejection_mark(pq.read_metadata(stored).metadata) is None

    assert materialize_only(resources, [snowflake_btcusdt], "2024-01-02").success
    assert warehouse_days(tmp_path) == [("2024-01-02", 1440)]


@pytest.fixture
def forty_two_day_standin() -> Iterator[tuple[BinanceStandIn, list[list]]]:
    rows = synthetic_days("2024-01-01", 42)
    klines = {("BTCUSDT", "1m"): [list(row) for row in rows]}
    with BinanceStandIn(klines, clock_ms=lambda: utc_ms("2024-02-12") + 30_000) as standin:
        yield standin, rows


def test_a_long_range_with_rejected_days_loads_nothing_and_names_each(
    tmp_path, forty_two_day_standin
):
    """42 days: DuckDB commits a range that long a month at a time, January once February's
    first batch of 8 days is read (and the 9th looked at); a refusal found only when the 10th
    is read would leave January loaded."""
    standin, rows = forty_two_day_standin
    resources = local(tmp_path, standin)
    assert materialize_only(resources, [raw_klines], "2024-01-01", "2024-02-11").success
    for day_index in (40, 41):  # 2024-02-10 and 2024-02-11
        swap_high_low(standin, rows[day_index * 1440 + 7])
    assert materialize_only(resources, [raw_klines], "2024-02-10", "2024-02-11").success
    cleaned = materialize_only(resources, [clean_klines], "2024-01-01", "2024-02-11")
    assert not cleaned.success  # its blocking checks failed; all 42 days are stored

    loaded = materialize_only(resources, [snowflake_btcusdt], "2024-01-01", "2024-02-11")

    assert not loaded.success
    assert warehouse_days(tmp_path) == []
    message = failure_text(loaded)
    assert "clean_klines for 2024-02-10, 2024-02-11 failed a blocking check when written" in message
    assert f"2024-02-10 at {clean_object(tmp_path, '2024-02-10')} failed" in message
    assert f"2024-02-11 at {clean_object(tmp_path, '2024-02-11')} failed" in message
    assert "materialize clean_klines for those days again" in message


def snowflake_days() -> list[list]:
    connection = snowflake.connector.connect(database="CRYPTODB", schema="CRYPTOSCHEMA")
    try:
        return [
            list(row)
            for row in connection.cursor()
            .execute(
                "SELECT TO_VARCHAR(TO_DATE(OPEN_TIME)), COUNT(*)"
                " FROM CRYPTODB.CRYPTOSCHEMA.BTCUSDT GROUP BY 1 ORDER BY 1"
            )
            .fetchall()
        ]
    finally:
        connection.close()


def test_prod_keeps_rejected_days_out_of_snowflake(
    prod_env, fake_snowflake, synthetic_standin, synthetic_rows
):
    """The same IO manager code over S3 (moto) and Snowflake (fakesnow). S3 reads no footer
    ahead: the days are refused as they are read, while Snowflake's load is still staging, and
    the error names both rejected days, though the read stopped at the first."""
    resources = prod_resources(prod_env)
    good = [synthetic_rows[1440 + 100], synthetic_rows[2880 + 100]]
    for row in good:
        swap_high_low(synthetic_standin, row)
    assert not materialize_days(resources, "2024-01-01", "2024-01-03").success
    key = partition_object_key("BTCUSDT", "1m", "2024-01-02")
    stored = (
        s3_client(prod_env["AWS_ENDPOINT_URL_S3"])
        .get_object(Bucket=TRANSFORMED_BUCKET, Key=key)["Body"]
        .read()
    )
    assert rejection_mark(pq.read_metadata(pa.BufferReader(stored)).metadata) == SWAPPED_HIGH_LOW

    later = materialize_only(resources, [snowflake_btcusdt], "2024-01-01", "2024-01-03")

    assert not later.success
    assert snowflake_days() == []
    message = failure_text(later)
    assert (
        "clean_klines for 2024-01-02, 2024-01-03 failed a blocking check when written, so they"
        f" are not read onward and nothing was loaded: 2024-01-02 at s3://{TRANSFORMED_BUCKET}/"
        f"{key} failed low_at_or_below_open_and_close (1 candle, first at 2024-01-02T01:40:00Z)"
    ) in message
    assert (
        f"2024-01-03 at s3://{TRANSFORMED_BUCKET}/"
        f"{partition_object_key('BTCUSDT', '1m', '2024-01-03')} failed"
        " low_at_or_below_open_and_close (1 candle, first at 2024-01-03T01:40:00Z)"
    ) in message

    for row in good:
        synthetic_standin.replace_kline("BTCUSDT", "1m", row[0], row)
    assert materialize_only(
        resources, [raw_klines, clean_klines], "2024-01-02", "2024-01-03"
    ).success
    assert materialize_only(resources, [snowflake_btcusdt], "2024-01-01", "2024-01-03").success
    assert snowflake_days() == [["2024-01-01", 1440], ["2024-01-02", 1440], ["2024-01-03", 1440]]
