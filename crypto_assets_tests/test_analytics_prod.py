"""The analytics in prod: Snowflake (fakesnow) with the tables sql/ creates, and charts in the
artifacts zone on S3 (moto) - the same assets as locally, only the resources differ.

The backtests stay out to keep the test short. They run here too (their staging tables are
created LIKE sql/05's, so the quoted "END" column survives fakesnow's write_pandas), and
test_atomic_tables.py covers their swap on fakesnow.
"""

from collections.abc import Iterator

import fakesnow
import pytest
import snowflake.connector
import sqlglot

from crypto_assets.analytics.backtest_assets import btcusdt_backtests
from crypto_assets.analytics.definitions import ANALYTICS_ASSETS
from crypto_assets.resources import prod_resources
from crypto_assets_tests.analytics_data import materialize_analytics
from crypto_assets_tests.fakesnow_swap import emulate_swap
from crypto_assets_tests.lineage import materialize_days
from crypto_assets_tests.prod_stack import SQL_DIR, TRANSFORMED_BUCKET, query, s3_client


def create_tables() -> list[str]:
    """The CREATE TABLE statements of sql/02_tables.sql and sql/05_analytics_tables.sql."""
    return [
        statement.sql(dialect="snowflake")
        for name in ("02_tables.sql", "05_analytics_tables.sql")
        for statement in sqlglot.parse((SQL_DIR / name).read_text(), read="snowflake")
        if statement is not None and statement.key == "create" and statement.kind == "TABLE"
    ]


@pytest.fixture
def fake_snowflake(monkeypatch) -> Iterator[None]:
    emulate_swap(monkeypatch)
    with fakesnow.patch(
        extra_targets=["dagster_snowflake_pandas.snowflake_pandas_type_handler.write_pandas"]
    ):
        connection = snowflake.connector.connect(database="CRYPTODB", schema="CRYPTOSCHEMA")
        for statement in create_tables():
            connection.cursor().execute(statement)
        connection.close()
        yield


def test_prod_analytics_write_snowflake_tables_and_s3_charts(
    prod_env, fake_snowflake, synthetic_rows
):
    resources = prod_resources(prod_env)
    assert materialize_days(resources, "2024-01-01", "2024-01-02").success
    without_backtests = [asset for asset in ANALYTICS_ASSETS if asset is not btcusdt_backtests]
    result = materialize_analytics(resources, "2024-01-01", "2024-01-02", assets=without_backtests)
    assert result.success

    daily = query("SELECT * FROM CRYPTODB.CRYPTOSCHEMA.BTCUSDT_1D ORDER BY OPEN_TIME")
    assert daily["CANDLE_COUNT"].tolist() == [1440, 1440]
    second_day = synthetic_rows[1440:2880]
    assert daily["OPEN"].iloc[1] == float(second_day[0][1])
    assert daily["CLOSE"].iloc[1] == float(second_day[-1][4])
    assert daily["HIGH"].iloc[1] == max(float(row[2]) for row in second_day)
    assert len(query("SELECT * FROM CRYPTODB.CRYPTOSCHEMA.BTCUSDT_4H")) == 12
    hourly = query("SELECT * FROM CRYPTODB.CRYPTOSCHEMA.BTCUSDT_INDICATORS_1H ORDER BY OPEN_TIME")
    assert len(hourly) == 48 and hourly["RSI_14"].notna().sum() == 48 - 14
    profile = query("SELECT * FROM CRYPTODB.CRYPTOSCHEMA.BTCUSDT_VOLUME_PROFILE")
    assert profile["IS_POC"].sum() == 1

    s3 = s3_client(prod_env["AWS_ENDPOINT_URL_S3"])
    keys = {item["Key"] for item in s3.list_objects_v2(Bucket=TRANSFORMED_BUCKET)["Contents"]}
    assert {"artifacts/charts/btcusdt_1d.png", "artifacts/charts/btcusdt_1h.png"} <= keys
    png = s3.get_object(Bucket=TRANSFORMED_BUCKET, Key="artifacts/charts/btcusdt_1h.png")
    assert png["ContentType"] == "image/png" and png["Body"].read()[:8] == b"\x89PNG\r\n\x1a\n"
