"""The warehouse IO manager replaces a partition range atomically, on DuckDB and on fakesnow."""

from datetime import datetime, timezone

import dagster as dg
import duckdb
import pandas as pd

from crypto_assets.klines.frames import DayFrames
from crypto_assets.klines.transform import clean_frame, raw_frame, warehouse_frame
from crypto_assets.resources import local_resources
from crypto_assets.storage.warehouse import TABLE_METADATA_KEY
from crypto_assets_tests.conftest import synthetic_days

PARTITIONS = dg.DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-01-04")


def day_frame(rows: list[list]) -> pd.DataFrame:
    return warehouse_frame(
        clean_frame(raw_frame(rows, "BTCUSDT", "1m", datetime.now(timezone.utc)))
    )


def loader(fail_on_day: str | None) -> dg.AssetsDefinition:
    """An asset that hands the warehouse two days; a failing load also brings different prices,
    so any row it managed to replace would show."""
    rows = synthetic_days("2024-01-01", 2, seed=11 if fail_on_day else 7)

    @dg.asset(
        name="snowflake_btcusdt",
        partitions_def=PARTITIONS,
        io_manager_key="warehouse_io_manager",
        metadata={"partition_expr": "open_time", TABLE_METADATA_KEY: "btcusdt"},
    )
    def load() -> DayFrames:
        first, second = day_frame(rows[:1440]), day_frame(rows[1440:])
        if fail_on_day == "2024-01-02":
            second["high"] = second["high"].astype(str) + "x"
        return DayFrames([("2024-01-01", first), ("2024-01-02", second)])

    return load


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
