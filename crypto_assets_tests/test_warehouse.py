"""The warehouse IO manager replaces a partition range atomically, on DuckDB and on fakesnow."""

from collections.abc import Iterator

import dagster as dg
import duckdb
import pandas as pd
import pytest

from crypto_assets.resources import local_resources
from crypto_assets_tests.conftest import synthetic_days
from crypto_assets_tests.lineage import warehouse_day, warehouse_loader

PARTITIONS = dg.DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-01-04")


def loader(fail_on_day: str | None) -> dg.AssetsDefinition:
    """An asset that hands the warehouse two days; a failing load also brings different prices,
    so any row it managed to replace would show."""
    rows = synthetic_days("2024-01-01", 2, seed=11 if fail_on_day else 7)

    def days() -> list[tuple[str, pd.DataFrame]]:
        first, second = warehouse_day(rows[:1440]), warehouse_day(rows[1440:])
        if fail_on_day == "2024-01-02":
            second["high"] = second["high"].astype(str) + "x"
        return [("2024-01-01", first), ("2024-01-02", second)]

    return warehouse_loader(PARTITIONS, days)


def run_range(resources: dict, fail_on_day: str | None = None) -> bool:
    return dg.materialize(
        [loader(fail_on_day)],
        resources=resources,
        tags={
            "dagster/asset_partition_range_start": "2024-01-01",
            "dagster/asset_partition_range_end": "2024-01-02",
        },
        raise_on_error=False,
    ).success


def test_a_failed_range_load_keeps_the_previous_rows(tmp_path):
    resources = {
        "warehouse_io_manager": local_resources({"CRYPTO_ASSETS_HOME": str(tmp_path)})[
            "warehouse_io_manager"
        ]
    }
    assert run_range(resources)
    database = str(tmp_path / "cryptodb.duckdb")
    with duckdb.connect(database, read_only=True) as connection:
        before = connection.execute(
            "select count(*), sum(close) from cryptodb.cryptoschema.btcusdt"
        ).fetchone()
    assert before[0] == 2880

    assert not run_range(resources, fail_on_day="2024-01-02")

    with duckdb.connect(database, read_only=True) as connection:
        after = connection.execute(
            "select count(*), sum(close) from cryptodb.cryptoschema.btcusdt"
        ).fetchone()
    assert after == before


def test_rerunning_a_range_changes_nothing(tmp_path):
    resources = {
        "warehouse_io_manager": local_resources({"CRYPTO_ASSETS_HOME": str(tmp_path)})[
            "warehouse_io_manager"
        ]
    }
    snapshots = []
    for _ in range(2):
        assert run_range(resources)
        with duckdb.connect(str(tmp_path / "cryptodb.duckdb"), read_only=True) as connection:
            snapshots.append(
                connection.execute(
                    "select * from cryptodb.cryptoschema.btcusdt order by open_time"
                ).fetchdf()
            )
    pd.testing.assert_frame_equal(snapshots[0], snapshots[1])
    assert len(snapshots[0]) == 2880


LONG_RANGE = dg.DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-02-10")


def long_range_loader(seed: int, failure: str | None) -> dg.AssetsDefinition:
    """40 days of 1h candles, longer than one transaction holds: the load commits by month.

    ``failure`` breaks 2024-02-05, while January's batch is being written behind: ``read``
    raises while producing the day, ``insert`` hands DuckDB a value it refuses.
    """
    days = [day.strftime("%Y-%m-%d") for day in pd.date_range("2024-01-01", "2024-02-09")]
    rows = synthetic_days("2024-01-01", len(days), interval="1h", seed=seed)

    def frames() -> Iterator[tuple[str, pd.DataFrame]]:
        for number, day in enumerate(days):
            frame = warehouse_day(rows[number * 24 : (number + 1) * 24], interval="1h")
            if day == "2024-02-05" and failure == "read":
                raise OSError(f"clean_klines for {day} is not readable")
            if day == "2024-02-05" and failure == "insert":
                frame["high"] = frame["high"].astype(str) + "x"
            yield day, frame

    return warehouse_loader(LONG_RANGE, frames)


@pytest.mark.parametrize("failure", ["read", "insert"])
def test_a_long_range_that_fails_keeps_the_months_it_committed_and_the_old_rest(tmp_path, failure):
    resources = {
        "warehouse_io_manager": local_resources({"CRYPTO_ASSETS_HOME": str(tmp_path)})[
            "warehouse_io_manager"
        ]
    }
    tags = {
        "dagster/asset_partition_range_start": "2024-01-01",
        "dagster/asset_partition_range_end": "2024-02-09",
    }

    def by_month() -> dict[int, tuple[int, float]]:
        with duckdb.connect(str(tmp_path / "cryptodb.duckdb"), read_only=True) as connection:
            rows = connection.execute(
                "select month(open_time), count(*), sum(close)"
                " from cryptodb.cryptoschema.btcusdt group by 1"
            ).fetchall()
        return {month: (count, total) for month, count, total in rows}

    assert dg.materialize([long_range_loader(7, None)], resources=resources, tags=tags).success
    old = by_month()
    assert dg.materialize([long_range_loader(11, None)], resources=resources, tags=tags).success
    new = by_month()
    assert dg.materialize([long_range_loader(7, None)], resources=resources, tags=tags).success
    assert old[1][0] == 31 * 24 and old[2][0] == 9 * 24 and old[1][1] != new[1][1]

    failed = dg.materialize(
        [long_range_loader(11, failure)], resources=resources, tags=tags, raise_on_error=False
    )

    assert not failed.success
    assert by_month() == {1: new[1], 2: old[2]}
