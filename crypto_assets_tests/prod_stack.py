"""The prod stand-ins shared by the prod tests: moto's S3 server and the prod environment."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import fakesnow
import pandas as pd
import pytest
import snowflake.connector
import sqlglot
from moto.server import ThreadedMotoServer

SQL_DIR = Path(__file__).resolve().parents[1] / "sql"
RAW_BUCKET, TRANSFORMED_BUCKET = "crypto-raw-test", "crypto-transformed-test"
PASSWORD = "pw-7Qx2-never-shown"
PROD_ENV = {
    "CRYPTO_ASSETS_ENV": "prod",
    "CRYPTO_ASSETS_RAW_BUCKET": RAW_BUCKET,
    "CRYPTO_ASSETS_TRANSFORMED_BUCKET": TRANSFORMED_BUCKET,
    "SNOWFLAKE_ACCOUNT": "testaccount",
    "SNOWFLAKE_USER": "pipeline",
    "SNOWFLAKE_WAREHOUSE": "CRYPTO_WH",
    "SNOWFLAKE_ROLE": "CRYPTO_PIPELINE",
}
"""Everything prod needs but a Snowflake credential and the S3 endpoint."""


def s3_client(endpoint: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )


def query(sql: str) -> pd.DataFrame:
    """``sql``'s answer from the (fake) Snowflake the prod resources wrote to."""
    connection = snowflake.connector.connect(database="CRYPTODB", schema="CRYPTOSCHEMA")
    try:
        return connection.cursor().execute(sql).fetch_pandas_all()
    finally:
        connection.close()


def table_ddl() -> list[str]:
    """The CREATE TABLE statements of sql/02_tables.sql, run as prod runs them."""
    statements = sqlglot.parse((SQL_DIR / "02_tables.sql").read_text(), read="snowflake")
    return [
        statement.sql(dialect="snowflake")
        for statement in statements
        if statement is not None and statement.key == "create" and statement.kind == "TABLE"
    ]


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def prod_env(monkeypatch, s3_endpoint, synthetic_standin) -> Iterator[dict[str, str]]:
    """Prod settings (password auth) against moto's S3 and the Binance stand-in, buckets made."""
    environ = {
        **PROD_ENV,
        "SNOWFLAKE_PASSWORD": PASSWORD,
        "AWS_ENDPOINT_URL_S3": s3_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "BINANCE_BASE_URL": synthetic_standin.url,
    }
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    s3 = s3_client(s3_endpoint)
    for bucket in (RAW_BUCKET, TRANSFORMED_BUCKET):
        s3.create_bucket(Bucket=bucket)
    yield environ
    for bucket in (RAW_BUCKET, TRANSFORMED_BUCKET):
        for item in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
            s3.delete_object(Bucket=bucket, Key=item["Key"])
        s3.delete_bucket(Bucket=bucket)


@pytest.fixture
def fake_snowflake() -> Iterator[None]:
    """fakesnow in patch mode, with the tables of sql/02_tables.sql created."""
    with fakesnow.patch(
        extra_targets=["dagster_snowflake_pandas.snowflake_pandas_type_handler.write_pandas"]
    ):
        connection = snowflake.connector.connect(database="CRYPTODB", schema="CRYPTOSCHEMA")
        statements = table_ddl()
        assert statements, "sql/02_tables.sql holds no CREATE TABLE"
        for statement in statements:
            connection.cursor().execute(statement)
        connection.close()
        yield
