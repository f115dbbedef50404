"""Read-only connections to the warehouse: short-lived DuckDB reads locally, Snowflake in prod.

DuckDB lets one process write a file at a time, and while the pipeline writes, a read-only
connection from another process cannot open it (and one held open would stall the writer's
connect). So the dashboard never keeps the file open: each refresh opens it read-only, runs its
few queries, and closes it within a fraction of a second. When the file stays locked through
a short bounded retry (a load is running), the read gives up with ``WarehouseBusy`` and the page
keeps showing the last data it read; the pipeline's own connect retries for about 100 s, far
longer than any dashboard read holds the file.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

DATABASE = "cryptodb"
SCHEMA = "cryptoschema"
DASHBOARD_ROLE = "CRYPTO_DASHBOARD"
DASHBOARD_PREFIX = "CRYPTO_ASSETS_DASHBOARD_SNOWFLAKE_"
DASHBOARD_AUTH = ("PRIVATE_KEY_PATH", "PRIVATE_KEY", "PASSWORD")
PIPELINE_ROLE = "CRYPTO_PIPELINE"
ADMIN_ROLES = ("ACCOUNTADMIN", "ORGADMIN", "SECURITYADMIN", "SYSADMIN", "USERADMIN")
READ_ONLY_SESSION = ("USE SECONDARY ROLES NONE",)
"""Every dashboard session's first statement. Snowflake's default secondary roles (ALL) would
give the session every role granted to its user, whatever role it names; NONE keeps only it."""
READ_RETRY_DELAYS = (0.05, 0.1, 0.2, 0.4)
"""Four short waits (0.75 s in all) before a read gives up and the page shows its last data."""
BUSY_PAUSE_SECONDS = 3.0


class WarehouseBusy(RuntimeError):
    """The pipeline holds the warehouse file for a load; try again on the next refresh."""


class WarehouseMissing(RuntimeError):
    """There is no warehouse yet: nothing has been loaded."""


class Session(Protocol):
    def frame(self, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame: ...


class Warehouse(Protocol):
    dialect: str
    schema: str

    def session(self) -> Any: ...


class _DuckDBSession:
    def __init__(self, connection: Any) -> None:
        self._connection = connection

    def frame(self, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        return self._connection.execute(sql, list(params)).fetchdf()


@dataclass
class DuckDBWarehouse:
    """The local DuckDB file, opened read-only for one batch of queries at a time."""

    path: Path
    schema: str = SCHEMA
    dialect: str = "duckdb"
    retry_delays: Sequence[float] = READ_RETRY_DELAYS
    sleep: Callable[[float], None] = time.sleep

    clock: Callable[[], float] = time.monotonic
    busy_pause: float = BUSY_PAUSE_SECONDS

    _one_reader = threading.Lock()
    """One read connection at a time per dashboard process, however many browsers watch."""
    busy_until: float = field(default=0.0, init=False)
    """After a read found the file locked, the page's other reads skip the wait for a moment."""

    @contextmanager
    def session(self) -> Iterator[_DuckDBSession]:
        import duckdb

        if not self.path.exists():
            raise WarehouseMissing(f"no warehouse file at {self.path}")
        with self._one_reader:
            if self.clock() < self.busy_until:
                raise WarehouseBusy("the pipeline is writing to the warehouse (a load is running)")
            connection = None
            for delay in (*self.retry_delays, None):
                try:
                    connection = duckdb.connect(
                        str(self.path), read_only=True, config={"memory_limit": "256MB"}
                    )
                    break
                except duckdb.IOException as exc:
                    if "lock" not in str(exc).lower():
                        raise
                    if delay is None:
                        self.busy_until = self.clock() + self.busy_pause
                        raise WarehouseBusy(
                            "the pipeline is writing to the warehouse (a load is running)"
                        ) from exc
                    self.sleep(delay)
            try:
                yield _DuckDBSession(connection)
            finally:
                connection.close()


class _SnowflakeSession:
    def __init__(self, connection: Any) -> None:
        self._connection = connection

    def frame(self, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        cursor = self._connection.cursor()
        try:
            cursor.execute(sql, list(params))
            columns = [column[0].lower() for column in cursor.description]
            return pd.DataFrame(cursor.fetchall(), columns=columns)
        finally:
            cursor.close()


@dataclass
class SnowflakeWarehouse:
    """Snowflake as the dashboard's own user and read-only role; one connection per batch of
    queries, each starting with ``first_statements``."""

    settings: Mapping[str, Any]
    schema: str
    dialect: str = "snowflake"
    first_statements: Sequence[str] = READ_ONLY_SESSION

    @contextmanager
    def session(self) -> Iterator[_SnowflakeSession]:
        import snowflake.connector

        connection = snowflake.connector.connect(
            **self.settings, schema=self.schema, paramstyle="qmark"
        )
        try:
            cursor = connection.cursor()
            for statement in self.first_statements:
                cursor.execute(statement)
            cursor.close()
            yield _SnowflakeSession(connection)
        finally:
            connection.close()


def snowflake_connector_settings(environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """The dashboard's own Snowflake login: CRYPTO_ASSETS_DASHBOARD_SNOWFLAKE_USER and its key
    (``..._PRIVATE_KEY_PATH`` or ``..._PRIVATE_KEY``, with ``..._PRIVATE_KEY_PASSWORD``; or
    ``..._PASSWORD``), with the read-only role CRYPTO_ASSETS_DASHBOARD_ROLE (default
    CRYPTO_DASHBOARD), on the pipeline's SNOWFLAKE_ACCOUNT and SNOWFLAKE_WAREHOUSE.

    Refuses the pipeline's user or role, or an admin role: the page would then hold INSERT and
    DELETE on the tables it shows."""
    missing = [
        name
        for name in ("SNOWFLAKE_ACCOUNT", "SNOWFLAKE_WAREHOUSE", f"{DASHBOARD_PREFIX}USER")
        if not environ.get(name)
    ]
    auth: dict[str, Any] = {}
    key_password = environ.get(f"{DASHBOARD_PREFIX}PRIVATE_KEY_PASSWORD")
    if environ.get(f"{DASHBOARD_PREFIX}PRIVATE_KEY_PATH"):
        auth["private_key_file"] = environ[f"{DASHBOARD_PREFIX}PRIVATE_KEY_PATH"]
        if key_password:
            auth["private_key_file_pwd"] = key_password
    elif environ.get(f"{DASHBOARD_PREFIX}PRIVATE_KEY"):
        auth["private_key"] = _der_private_key(
            environ[f"{DASHBOARD_PREFIX}PRIVATE_KEY"], key_password
        )
    elif environ.get(f"{DASHBOARD_PREFIX}PASSWORD"):
        auth["password"] = environ[f"{DASHBOARD_PREFIX}PASSWORD"]
    else:
        missing.append(" or ".join(f"{DASHBOARD_PREFIX}{name}" for name in DASHBOARD_AUTH))
    if missing:
        raise ValueError("the dashboard in prod needs: " + ", ".join(missing))
    user = environ[f"{DASHBOARD_PREFIX}USER"]
    if user.upper() == environ.get("SNOWFLAKE_USER", "").upper():
        raise ValueError(
            f"{DASHBOARD_PREFIX}USER={user!r} is the pipeline's user (SNOWFLAKE_USER): the"
            " dashboard needs a user of its own, granted the read-only role only"
            " (sql/06_read_only_role.sql)."
        )
    role = environ.get("CRYPTO_ASSETS_DASHBOARD_ROLE", DASHBOARD_ROLE)
    writing_roles = {PIPELINE_ROLE, *ADMIN_ROLES, environ.get("SNOWFLAKE_ROLE", "").upper()}
    if role.upper() in writing_roles:
        raise ValueError(
            f"CRYPTO_ASSETS_DASHBOARD_ROLE={role!r} can write or administer the warehouse (the"
            " pipeline's role, or an admin role): the dashboard runs with a read-only role only"
            f" ({DASHBOARD_ROLE}, sql/06_read_only_role.sql)."
        )
    settings = {
        "account": environ["SNOWFLAKE_ACCOUNT"],
        "user": user,
        "warehouse": environ["SNOWFLAKE_WAREHOUSE"],
        "database": environ.get("SNOWFLAKE_DATABASE", DATABASE.upper()),
        "role": role,
        **auth,
    }
    return {**settings, **snowflake_endpoint(environ)}


def snowflake_endpoint(environ: Mapping[str, str]) -> dict[str, Any]:
    """SNOWFLAKE_HOST/PORT/PROTOCOL when set (a proxy, a stand-in); plain http only to a
    loopback host, where the login and session token never cross the network."""
    from crypto_assets.settings import env_int
    from crypto_assets.sources.urls import is_loopback_host

    endpoint: dict[str, Any] = {}
    if environ.get("SNOWFLAKE_HOST"):
        endpoint["host"] = environ["SNOWFLAKE_HOST"]
    if environ.get("SNOWFLAKE_PORT"):
        endpoint["port"] = env_int("SNOWFLAKE_PORT", 443, 1, 65_535, environ)
    protocol = environ.get("SNOWFLAKE_PROTOCOL")
    if protocol:
        if protocol not in ("https", "http"):
            raise ValueError(f"SNOWFLAKE_PROTOCOL={protocol!r}: expected https (or http).")
        if protocol == "http" and not is_loopback_host(endpoint.get("host")):
            raise ValueError(
                f"SNOWFLAKE_PROTOCOL=http with SNOWFLAKE_HOST={endpoint.get('host')!r}: plain"
                " http is allowed only to this machine (localhost, 127.0.0.0/8, ::1); use https."
            )
        endpoint["protocol"] = protocol
    return endpoint


def _der_private_key(pem: str, password: str | None) -> bytes:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(
        pem.encode(), password=password.encode() if password else None
    )
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def warehouse_from_env(
    environ: Mapping[str, str] = os.environ,
) -> DuckDBWarehouse | SnowflakeWarehouse:
    """DuckDB under CRYPTO_ASSETS_HOME locally; Snowflake when CRYPTO_ASSETS_ENV=prod."""
    from crypto_assets.settings import environment_name, local_home

    if environment_name(environ) == "prod":
        return SnowflakeWarehouse(
            settings=snowflake_connector_settings(environ),
            schema=environ.get("SNOWFLAKE_SCHEMA", SCHEMA.upper()),
        )
    return DuckDBWarehouse(path=local_home(environ) / f"{DATABASE}.duckdb")
