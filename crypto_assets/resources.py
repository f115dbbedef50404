"""Resource sets for the two environments. Asset code sees the same keys in both:

- ``binance``: the klines client (base URL from ``BINANCE_BASE_URL``);
- ``binance_archive``: Binance's kline archive (``BINANCE_ARCHIVE_URL``; empty turns it off);
- ``raw_io_manager`` / ``transformed_io_manager``: Parquet zones (local folders, or S3 buckets);
- ``warehouse_io_manager``: DuckDB file ``cryptodb`` locally, Snowflake in prod;
- ``warehouse``: read-only SQL against the same warehouse, for checks;
- ``notifier``: where alerts go (the log always; Slack and a webhook when configured);
- ``artifacts``: the artifacts zone for charts (local ``data/artifacts``, or an S3 prefix:
  ``CRYPTO_ASSETS_ARTIFACTS_BUCKET``, else the transformed bucket, under ``artifacts/``).

Prod settings and secrets come from environment variables through ``dg.EnvVar``; a missing
required one stops the load with its name, instead of failing late inside a run.
"""

import os
from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_duckdb import DuckDBResource

from crypto_assets.automation.alerts import notifier_resource
from crypto_assets.klines.resources import binance_archive_resource, binance_resource
from crypto_assets.settings import SettingsError, local_home
from crypto_assets.storage.artifacts import LocalArtifacts, S3Artifacts
from crypto_assets.storage.parquet import LocalKlinesIOManager
from crypto_assets.storage.warehouse_duckdb import DuckDBWarehouse, DuckDBWarehouseIOManager

DATABASE = "cryptodb"
SCHEMA = "cryptoschema"
DUCKDB_CONFIG = {"memory_limit": "128MB"}
"""DuckDB caches up to 80% of RAM by default; a laptop-friendly cap keeps a year-long
single-transaction load near 512 MiB peak (see benchmarks/range_run.py)."""


def local_resources(environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    home = local_home(environ)
    duckdb_path = str(home / f"{DATABASE}.duckdb")
    return {
        "binance": binance_resource(environ),
        "binance_archive": binance_archive_resource(environ),
        "notifier": notifier_resource(environ),
        "artifacts": LocalArtifacts(base_dir=str(home / "artifacts")),
        "raw_io_manager": LocalKlinesIOManager(base_dir=str(home / "raw")),
        "transformed_io_manager": LocalKlinesIOManager(base_dir=str(home / "transformed")),
        "warehouse_io_manager": DuckDBWarehouseIOManager(
            database=duckdb_path, schema=SCHEMA, connection_config=DUCKDB_CONFIG
        ),
        "warehouse": DuckDBWarehouse(
            duckdb=DuckDBResource(database=duckdb_path, connection_config=DUCKDB_CONFIG),
            schema_name=SCHEMA,
        ),
    }


PROD_REQUIRED = (
    "CRYPTO_ASSETS_RAW_BUCKET",
    "CRYPTO_ASSETS_TRANSFORMED_BUCKET",
    "SNOWFLAKE_ACCOUNT",
    "SNOWFLAKE_USER",
    "SNOWFLAKE_WAREHOUSE",
)
SNOWFLAKE_AUTH = ("SNOWFLAKE_PASSWORD", "SNOWFLAKE_PRIVATE_KEY_PATH", "SNOWFLAKE_PRIVATE_KEY")


def _optional(environ: Mapping[str, str], name: str) -> dg.EnvVar | None:
    return dg.EnvVar(name) if environ.get(name) else None


def snowflake_settings(environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """Connection settings shared by the Snowflake IO manager and query resource."""
    auth: dict[str, Any]
    if environ.get("SNOWFLAKE_PRIVATE_KEY_PATH"):
        auth = {"private_key_path": dg.EnvVar("SNOWFLAKE_PRIVATE_KEY_PATH")}
    elif environ.get("SNOWFLAKE_PRIVATE_KEY"):
        auth = {"private_key": dg.EnvVar("SNOWFLAKE_PRIVATE_KEY")}
    else:
        auth = {"password": dg.EnvVar("SNOWFLAKE_PASSWORD")}
    if "password" not in auth and environ.get("SNOWFLAKE_PRIVATE_KEY_PASSWORD"):
        auth["private_key_password"] = dg.EnvVar("SNOWFLAKE_PRIVATE_KEY_PASSWORD")
    return {
        "account": dg.EnvVar("SNOWFLAKE_ACCOUNT"),
        "user": dg.EnvVar("SNOWFLAKE_USER"),
        "warehouse": dg.EnvVar("SNOWFLAKE_WAREHOUSE"),
        "role": _optional(environ, "SNOWFLAKE_ROLE"),
        "database": environ.get("SNOWFLAKE_DATABASE", DATABASE.upper()),
        **auth,
    }


def prod_resources(environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    missing = [name for name in PROD_REQUIRED if not environ.get(name)]
    if not any(environ.get(name) for name in SNOWFLAKE_AUTH):
        missing.append(" or ".join(SNOWFLAKE_AUTH))
    if missing:
        raise SettingsError(
            "CRYPTO_ASSETS_ENV=prod needs these environment variables: " + ", ".join(missing)
        )
    from dagster_aws.s3 import S3Resource

    from crypto_assets.storage.parquet_s3 import S3KlinesIOManager
    from crypto_assets.storage.warehouse_snowflake import (
        SnowflakeResource,
        SnowflakeWarehouse,
        SnowflakeWarehouseIOManager,
    )

    s3 = S3Resource(
        region_name=environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION"),
        endpoint_url=environ.get("AWS_ENDPOINT_URL_S3") or None,
    )
    sse = environ.get("CRYPTO_ASSETS_S3_SSE") or None
    snowflake = snowflake_settings(environ)
    schema = environ.get("SNOWFLAKE_SCHEMA", SCHEMA.upper())
    return {
        "binance": binance_resource(environ),
        "binance_archive": binance_archive_resource(environ),
        "notifier": notifier_resource(environ),
        "artifacts": S3Artifacts(
            bucket=dg.EnvVar(
                "CRYPTO_ASSETS_ARTIFACTS_BUCKET"
                if environ.get("CRYPTO_ASSETS_ARTIFACTS_BUCKET")
                else "CRYPTO_ASSETS_TRANSFORMED_BUCKET"
            ),
            prefix="artifacts",
            region_name=environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION"),
            endpoint_url=environ.get("AWS_ENDPOINT_URL_S3") or None,
            server_side_encryption=sse,
        ),
        "raw_io_manager": S3KlinesIOManager(
            s3=s3, bucket=dg.EnvVar("CRYPTO_ASSETS_RAW_BUCKET"), server_side_encryption=sse
        ),
        "transformed_io_manager": S3KlinesIOManager(
            s3=s3, bucket=dg.EnvVar("CRYPTO_ASSETS_TRANSFORMED_BUCKET"), server_side_encryption=sse
        ),
        "warehouse_io_manager": SnowflakeWarehouseIOManager(**snowflake, schema=schema),
        "warehouse": SnowflakeWarehouse(
            snowflake=SnowflakeResource(**snowflake, schema=schema), schema_name=schema
        ),
    }


def resources_for(environment: str, environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    return {"local": local_resources, "prod": prod_resources}[environment](environ)
