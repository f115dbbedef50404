"""The prod lineage on loopback: moto's S3 server over HTTP and fakesnow as Snowflake.

The same assets as locally; only the resources differ (CRYPTO_ASSETS_ENV=prod settings).
"""

import pandas as pd
import pytest
import snowflake.connector

from crypto_assets.resources import prod_resources
from crypto_assets.settings import SettingsError
from crypto_assets.storage.parquet import partition_object_key
from crypto_assets_tests.lineage import check_results, materialize_days
from crypto_assets_tests.prod_stack import (
    RAW_BUCKET,
    TRANSFORMED_BUCKET,
    query,
    s3_client,
    table_ddl,
)

EXPECTED_CHECKS = 12  # nine OHLC rules and completeness, one row count, two archive checks


def test_prod_lineage_writes_both_buckets_and_snowflake(prod_env, fake_snowflake, synthetic_rows):
    resources = prod_resources(prod_env)
    assert materialize_days(resources, "2024-01-01").success
    assert materialize_days(resources, "2024-01-02").success
    result = materialize_days(resources, "2024-01-01")
    assert result.success
    checks = check_results(result)
    assert len(checks) == EXPECTED_CHECKS
    assert [name for name, evaluation in checks.items() if not evaluation.passed] == []

    s3 = s3_client(prod_env["AWS_ENDPOINT_URL_S3"])
    for bucket in (RAW_BUCKET, TRANSFORMED_BUCKET):
        keys = sorted(item["Key"] for item in s3.list_objects_v2(Bucket=bucket)["Contents"])
        assert keys == [
            partition_object_key("BTCUSDT", "1m", "2024-01-01"),
            partition_object_key("BTCUSDT", "1m", "2024-01-02"),
        ]

    per_day = query(
        "SELECT TO_DATE(OPEN_TIME) AS DAY, COUNT(*) AS N, COUNT(DISTINCT OPEN_TIME) AS D"
        " FROM CRYPTODB.CRYPTOSCHEMA.BTCUSDT GROUP BY 1 ORDER BY 1"
    )
    assert per_day[["N", "D"]].values.tolist() == [[1440, 1440], [1440, 1440]]

    table = query("SELECT * FROM cryptodb.cryptoschema.btcusdt ORDER BY OPEN_TIME")
    assert len(table) == 2880
    for position in (0, 1500, 2879):
        row = synthetic_rows[position]
        assert table["OPEN_TIME"].iloc[position] == pd.Timestamp(row[0], unit="ms")
        assert table["OPEN"].iloc[position] == float(row[1])
        assert table["CLOSE"].iloc[position] == float(row[4])
        assert table["NUM_TRADES"].iloc[position] == row[8]


def test_prod_settings_missing_variables_are_named():
    with pytest.raises(SettingsError) as error:
        prod_resources({"SNOWFLAKE_ACCOUNT": "x"})
    message = str(error.value)
    for name in ("CRYPTO_ASSETS_RAW_BUCKET", "SNOWFLAKE_USER", "SNOWFLAKE_PASSWORD"):
        assert name in message
    assert "SNOWFLAKE_ACCOUNT," not in message


def test_a_missing_bucket_fails_the_run_naming_it(prod_env, fake_snowflake, monkeypatch):
    monkeypatch.setenv("CRYPTO_ASSETS_RAW_BUCKET", "no-such-bucket")
    result = materialize_days(prod_resources(prod_env), "2024-01-01")
    assert not result.success
    failure = next(event for event in result.all_events if event.is_step_failure)
    assert "no-such-bucket" in str(failure.step_failure_data.error)
    assert "does not exist" in str(failure.step_failure_data.error)


def test_a_non_default_snowflake_schema_is_loaded_and_checked_there(
    prod_env, fake_snowflake, monkeypatch
):
    """SNOWFLAKE_SCHEMA=OTHERSCHEMA: the load, its row-count check and reads all go there,
    while an empty CRYPTOSCHEMA.BTCUSDT sits beside it."""
    connection = snowflake.connector.connect(database="CRYPTODB", schema="CRYPTOSCHEMA")
    connection.cursor().execute("CREATE SCHEMA IF NOT EXISTS CRYPTODB.OTHERSCHEMA")
    for statement in table_ddl():
        connection.cursor().execute(statement.replace("CRYPTOSCHEMA", "OTHERSCHEMA"))
    connection.close()
    monkeypatch.setenv("SNOWFLAKE_SCHEMA", "OTHERSCHEMA")
    environ = {**prod_env, "SNOWFLAKE_SCHEMA": "OTHERSCHEMA"}

    result = materialize_days(prod_resources(environ), "2024-01-02")

    assert result.success
    row_count = check_results(result)["warehouse_matches_clean_klines"]
    assert row_count.passed
    assert row_count.metadata["warehouse_rows"].value == 1440
    counts = query(
        "SELECT (SELECT COUNT(*) FROM CRYPTODB.OTHERSCHEMA.BTCUSDT) AS OTHER,"
        " (SELECT COUNT(*) FROM CRYPTODB.CRYPTOSCHEMA.BTCUSDT) AS DEFAULT_SCHEMA"
    )
    assert counts.values.tolist() == [[1440, 0]]
