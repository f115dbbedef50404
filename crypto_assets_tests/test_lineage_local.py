"""The local lineage end to end: stand-in Binance over HTTP -> Parquet zones -> DuckDB."""

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd

from crypto_assets.klines.checks import warehouse_matches_clean_klines
from crypto_assets.resources import local_resources
from crypto_assets.storage.parquet import partition_object_key
from crypto_assets_tests.binance_standin import BinanceStandIn, load_klines_csv
from crypto_assets_tests.conftest import synthetic_days, utc_ms
from crypto_assets_tests.lineage import CHECKS, LINEAGE, check_results, materialize_days

WAREHOUSE_QUERY = "SELECT * FROM cryptodb.cryptoschema.btcusdt ORDER BY open_time"


def local(tmp_path: Path, standin: BinanceStandIn) -> dict:
    return local_resources({"CRYPTO_ASSETS_HOME": str(tmp_path), "BINANCE_BASE_URL": standin.url})


def warehouse(tmp_path: Path, sql: str = WAREHOUSE_QUERY) -> pd.DataFrame:
    with duckdb.connect(str(tmp_path / "cryptodb.duckdb"), read_only=True) as connection:
        return connection.execute(sql).fetchdf()


def test_one_day_lands_in_every_zone_and_the_warehouse(tmp_path, synthetic_standin, synthetic_rows):
    result = materialize_days(local(tmp_path, synthetic_standin), "2024-01-02")
    assert result.success

    raw = pd.read_parquet(tmp_path / "raw" / partition_object_key("BTCUSDT", "1m", "2024-01-02"))
    clean = pd.read_parquet(
        tmp_path / "transformed" / partition_object_key("BTCUSDT", "1m", "2024-01-02")
    )
    served = synthetic_rows[1440:2880]
    assert len(raw) == len(clean) == 1440
    assert raw["open"].tolist()[:3] == [row[1] for row in served[:3]]
    assert raw["open_time"].iloc[0] == 1_704_153_600_000  # 2024-01-02T00:00:00Z

    table = warehouse(tmp_path)
    assert len(table) == 1440
    assert table["open_time"].iloc[0] == pd.Timestamp("2024-01-02 00:00")
    assert table["open_time"].iloc[-1] == pd.Timestamp("2024-01-02 23:59")
    assert set(table["symbol"]) == {"BTCUSDT"}
    for position in (0, 719, 1439):
        row = served[position]
        assert table["close"].iloc[position] == float(row[4])
        assert table["volume"].iloc[position] == float(row[5])
        assert table["num_trades"].iloc[position] == row[8]

    checks = check_results(result)
    assert {name for name, evaluation in checks.items() if not evaluation.passed} == set()
    assert len(checks) == 12  # 9 OHLC + completeness, warehouse rows, 2 archive checks (WARN)


def test_rematerializing_a_day_leaves_one_copy(tmp_path, synthetic_standin):
    resources = local(tmp_path, synthetic_standin)
    assert materialize_days(resources, "2024-01-01").success
    assert materialize_days(resources, "2024-01-02").success
    assert materialize_days(resources, "2024-01-01").success
    counts = warehouse(
        tmp_path,
        "SELECT cast(open_time AS date)::varchar AS day, count(*) AS n,"
        " count(DISTINCT open_time) AS distinct_n"
        " FROM cryptodb.cryptoschema.btcusdt GROUP BY 1 ORDER BY 1",
    )
    assert counts.values.tolist() == [["2024-01-01", 1440, 1440], ["2024-01-02", 1440, 1440]]


def test_a_range_run_writes_each_day(tmp_path, synthetic_standin):
    result = materialize_days(local(tmp_path, synthetic_standin), "2024-01-01", "2024-01-03")
    assert result.success
    for day in ("2024-01-01", "2024-01-02", "2024-01-03"):
        assert (tmp_path / "transformed" / partition_object_key("BTCUSDT", "1m", day)).exists()
    assert len(warehouse(tmp_path)) == 3 * 1440


def test_a_corrupted_candle_fails_the_blocking_check_and_stays_out(
    tmp_path, synthetic_standin, synthetic_rows
):
    bad = list(synthetic_rows[1440 + 100])
    bad[2], bad[3] = bad[3], bad[2]  # high below low
    synthetic_standin.replace_kline("BTCUSDT", "1m", bad[0], bad)

    result = materialize_days(local(tmp_path, synthetic_standin), "2024-01-02")

    assert not result.success
    failed = check_results(result)["low_at_or_below_open_and_close"]
    assert not failed.passed
    assert failed.metadata["offending_open_times"].value == ["2024-01-02T01:40:00Z"]
    assert (
        not (tmp_path / "cryptodb.duckdb").exists()
        or warehouse(
            tmp_path,
            "SELECT count(*) AS n FROM information_schema.tables WHERE table_name = 'btcusdt'",
        )["n"].iloc[0]
        == 0
    )


def test_real_klines_reach_the_warehouse_unchanged(tmp_path, real_1m_csv):
    rows = load_klines_csv(real_1m_csv)
    with BinanceStandIn({("BTCUSDT", "1m"): rows}) as standin:
        result = materialize_days(local(tmp_path, standin), "2025-08-05")
    assert result.success
    source = [row for row in rows if row[0] >= utc_ms("2025-08-05")][:1440]
    table = warehouse(tmp_path)
    assert len(table) == 1440
    assert table["open_time"].iloc[0] == pd.Timestamp("2025-08-05 00:00")
    assert table["open_time"].iloc[-1] == pd.Timestamp("2025-08-05 23:59")
    for column, field in (("open", 1), ("high", 2), ("low", 3), ("close", 4), ("volume", 5)):
        assert table[column].tolist() == [float(row[field]) for row in source], column
    assert table["num_trades"].tolist() == [row[8] for row in source]


def test_readme_command_materializes_an_hourly_day(tmp_path):
    """`dagster asset materialize -m crypto_assets.definitions ...` as the README runs it, on 1h."""
    klines = {("BTCUSDT", "1h"): synthetic_days("2024-01-01", 2, interval="1h")}
    with BinanceStandIn(klines, clock_ms=lambda: utc_ms("2024-01-03")) as standin:
        completed = subprocess.run(
            [
                str(Path(sys.executable).parent / "dagster"),
                "asset",
                "materialize",
                "-m",
                "crypto_assets.definitions",
                "--select",
                "raw_klines,clean_klines,snowflake_btcusdt",
                "--partition",
                "2024-01-02",
            ],
            env={
                **os.environ,
                "CRYPTO_ASSETS_HOME": str(tmp_path),
                "CRYPTO_ASSETS_INTERVAL": "1h",
                "BINANCE_BASE_URL": standin.url,
                "DAGSTER_HOME": "",
            },
            capture_output=True,
            text=True,
            timeout=180,
        )
    assert completed.returncode == 0, completed.stderr[-3000:]
    table = warehouse(tmp_path)
    assert len(table) == 24
    assert set(table["interval"]) == {"1h"}
    assert table["open_time"].iloc[-1] == pd.Timestamp("2024-01-02 23:00")


def test_the_row_count_check_fails_when_the_warehouse_lost_rows(tmp_path, synthetic_standin):
    resources = local(tmp_path, synthetic_standin)
    assert materialize_days(resources, "2024-01-02").success
    with duckdb.connect(str(tmp_path / "cryptodb.duckdb")) as connection:
        connection.execute(
            "delete from cryptodb.cryptoschema.btcusdt where open_time >= '2024-01-02 23:50:00'"
        )

    result = dg.materialize(
        [*LINEAGE, *CHECKS],
        resources=resources,
        tags={"dagster/partition": "2024-01-02"},
        selection=dg.AssetSelection.checks(warehouse_matches_clean_klines),
        raise_on_error=False,
    )

    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.check_name == "warehouse_matches_clean_klines"
    assert not evaluation.passed
    assert evaluation.metadata["clean_rows"].value == 1440
    assert evaluation.metadata["warehouse_rows"].value == 1430
    assert evaluation.metadata["mismatched_days"].value == {
        "2024-01-02": {"clean_klines": 1440, "warehouse": 1430}
    }
