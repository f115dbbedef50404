"""The review's "secrets and inputs" findings: what reaches a log, and what the settings accept."""

import logging
import os
import re
import socket
import subprocess
import sys
import time

import dagster as dg
import duckdb
import pytest
import snowflake.connector
from snowflake.connector.util_text import split_statements

from crypto_assets.analytics.backtest import Costs
from crypto_assets.automation.alerts import Alert, AlertNotifier
from crypto_assets.cli import dashboard_command
from crypto_assets.dashboard.connection import (
    SnowflakeWarehouse,
    snowflake_connector_settings,
    snowflake_endpoint,
)
from crypto_assets.dashboard.queries import base_minutes
from crypto_assets.klines.resources import binance_archive_resource, binance_resource
from crypto_assets.resources import prod_resources
from crypto_assets.settings import SettingsError, env_int
from crypto_assets.sources.binance_archive import BinanceArchiveClient
from crypto_assets.sources.binance_rest import BinanceKlinesClient
from crypto_assets.sources.urls import InsecureUrlError, require_secure_url
from crypto_assets.storage.warehouse_duckdb import connect_waiting_for_lock
from crypto_assets.storage.warehouse_snowflake import (
    SnowflakeWarehouseIOManager,
    stale_staging_tables,
)
from crypto_assets_tests.conftest import synthetic_days
from crypto_assets_tests.lineage import warehouse_day, warehouse_loader
from crypto_assets_tests.prod_stack import SQL_DIR, TRANSFORMED_BUCKET, s3_client
from crypto_assets_tests.snowflake_proxy import RecordingSnowflakeProxy
from crypto_assets_tests.webhook_receiver import WebhookReceiver

WEBHOOK_TOKEN = "T0KEN-9f3c-webhook-secret"
ALERT = Alert("run_failed", "snowflake_btcusdt", "2024-01-02", "", "ERROR", "run-1", "boom")


def dead_port() -> int:
    """A loopback port nothing listens on (bound once, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.faults
def test_a_webhook_on_a_dead_port_is_logged_without_its_token(caplog):
    url = f"http://127.0.0.1:{dead_port()}/hooks/{WEBHOOK_TOKEN}?sig={WEBHOOK_TOKEN}-sig"
    notifier = AlertNotifier(webhook_url=url, attempts=2, retry_delay_seconds=0.01)
    with caplog.at_level(logging.WARNING):
        delivered = notifier.send(ALERT, logging.getLogger("crypto_assets.test_secrets"))
    assert delivered == {"log": True, "webhook": False}
    assert "Alert not delivered to webhook after 2 attempts: ConnectionError:" in caplog.text
    assert "[redacted]" in caplog.text
    assert WEBHOOK_TOKEN not in caplog.text


@pytest.mark.faults
def test_a_webhook_answering_500_is_logged_without_its_token(caplog):
    with WebhookReceiver(fail_first=10) as receiver, caplog.at_level(logging.WARNING):
        notifier = AlertNotifier(
            webhook_url=f"{receiver.url}/{WEBHOOK_TOKEN}", attempts=1, retry_delay_seconds=0.01
        )
        notifier.send(ALERT, logging.getLogger("crypto_assets.test_secrets"))
    assert receiver.attempts == 1
    assert "HTTPError: 500 Server Error" in caplog.text
    assert WEBHOOK_TOKEN not in caplog.text


def test_chart_artifacts_are_written_with_the_s3_sse_setting(prod_env):
    artifacts = prod_resources({**prod_env, "CRYPTO_ASSETS_S3_SSE": "AES256"})["artifacts"]
    with dg.build_resources({"artifacts": artifacts}) as resources:  # resolves the bucket EnvVar
        where = resources.artifacts.write("charts/btcusdt_1d.png", b"\x89PNG chart")
    assert where == f"s3://{TRANSFORMED_BUCKET}/artifacts/charts/btcusdt_1d.png"
    head = s3_client(prod_env["AWS_ENDPOINT_URL_S3"]).head_object(
        Bucket=TRANSFORMED_BUCKET, Key="artifacts/charts/btcusdt_1d.png"
    )
    assert head["ServerSideEncryption"] == "AES256"
    assert head["ContentType"] == "image/png"


LOCK_HOLDER = """
import sys, duckdb
connection = duckdb.connect(sys.argv[1])
print("holding", flush=True)
sys.stdin.read()
"""


@pytest.mark.faults
def test_a_locked_duckdb_file_names_the_holder_by_pid_and_program_not_its_command_line(tmp_path):
    database = tmp_path / "cryptodb.duckdb"
    secret = "--password=hunter2-on-the-command-line"
    holder = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, str(database), secret],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        with pytest.raises(dg.Failure) as refused:
            connect_waiting_for_lock(str(database), {}, wait_seconds=0.2)
    finally:
        holder.communicate("", timeout=30)
    program = os.path.basename(os.path.realpath(sys.executable))
    message = str(refused.value)
    assert f"is held by process {holder.pid} ({program}) and stayed locked for 0.2s" in message
    assert "hunter2" not in message
    assert os.path.dirname(os.path.realpath(sys.executable)) not in message


@pytest.mark.parametrize(
    ("costs", "complaint"),
    [
        ({"fee_bps": -1.0}, "fee_bps=-1.0: expected basis points from 0 to 1000"),
        ({"slippage_bps": float("nan")}, "slippage_bps=nan: expected basis points from 0 to 1000"),
        ({"fee_bps": float("inf")}, "fee_bps=inf: expected basis points from 0 to 1000"),
        ({"slippage_bps": 1000.5}, "slippage_bps=1000.5: expected basis points from 0 to 1000"),
        ({"fee_bps": "10"}, "fee_bps='10': expected a number of basis points"),
    ],
)
def test_backtest_costs_outside_0_to_1000_bps_are_refused_naming_the_field(costs, complaint):
    with pytest.raises(ValueError) as refused:
        Costs(**costs)
    assert str(refused.value) == complaint + "."


def test_backtest_costs_at_the_bounds_are_kept():
    assert (Costs(fee_bps=0, slippage_bps=1000).fee, Costs(0, 1000).slippage) == (0.0, 0.1)


REFRESH = "CRYPTO_ASSETS_DASHBOARD_REFRESH_SECONDS"


@pytest.mark.parametrize(
    ("text", "expected"), [(None, 30), ("", 30), (" 45 ", 45), ("1", 1), ("60", 60)]
)
def test_a_number_from_the_environment_is_read_within_its_bounds(text, expected):
    environ = {} if text is None else {REFRESH: text}
    assert env_int(REFRESH, 30, 1, 60, environ) == expected


@pytest.mark.parametrize("text", ["abc", "0", "-5", "61", "2.5", "1e3"])
def test_a_bad_number_from_the_environment_is_refused_naming_its_variable(text):
    with pytest.raises(SettingsError) as refused:
        env_int(REFRESH, 30, 1, 60, {REFRESH: text})
    assert str(refused.value) == (
        f"CRYPTO_ASSETS_DASHBOARD_REFRESH_SECONDS={text!r}: expected a whole number from 1 to 60."
    )


@pytest.mark.parametrize(
    "url",
    [
        "https://api.binance.com",
        "https://data.binance.vision",
        "http://127.0.0.1:9",
        "http://127.8.9.10/mirror",
        "http://localhost:8080",
        "http://[::1]:8080",
    ],
)
def test_https_or_loopback_http_urls_are_accepted(url):
    assert require_secure_url(url, "BINANCE_BASE_URL") == url


@pytest.mark.parametrize(
    "url",
    ["http://api.binance.com", "http://10.0.0.5:8080", "http://127.0.0.1.nip.io", "http://[::2]"],
)
def test_plain_http_to_another_machine_is_refused_naming_the_setting(url):
    with pytest.raises(InsecureUrlError) as refused:
        require_secure_url(url, "BINANCE_ARCHIVE_URL")
    assert str(refused.value) == (
        f"BINANCE_ARCHIVE_URL={url!r}: plain http is allowed only to this machine (localhost,"
        " 127.0.0.0/8, ::1); use https."
    )


@pytest.mark.parametrize("url", ["ftp://data.binance.vision", "data.binance.vision", "https://"])
def test_a_url_that_is_not_https_is_refused(url):
    with pytest.raises(InsecureUrlError, match="expected an https:// URL"):
        require_secure_url(url, "BINANCE_BASE_URL")


def test_every_binance_entry_point_refuses_plain_http_to_another_machine():
    mirror = "http://mirror.example.com"
    with pytest.raises(SettingsError, match=re.escape(f"BINANCE_BASE_URL='{mirror}'")):
        binance_resource({"BINANCE_BASE_URL": mirror})
    with pytest.raises(SettingsError, match=re.escape(f"BINANCE_ARCHIVE_URL='{mirror}'")):
        binance_archive_resource({"BINANCE_ARCHIVE_URL": mirror})
    with pytest.raises(InsecureUrlError, match="BINANCE_BASE_URL"):
        BinanceKlinesClient(base_url=mirror)
    with pytest.raises(InsecureUrlError, match="BINANCE_ARCHIVE_URL"):
        BinanceArchiveClient(base_url=mirror)
    assert binance_archive_resource({"BINANCE_ARCHIVE_URL": ""}).get_client() is None


def test_the_snowflake_endpoint_takes_http_only_on_loopback():
    local = {"SNOWFLAKE_HOST": "127.0.0.1", "SNOWFLAKE_PORT": "8085", "SNOWFLAKE_PROTOCOL": "http"}
    assert snowflake_endpoint(local) == {"host": "127.0.0.1", "port": 8085, "protocol": "http"}
    remote = {"SNOWFLAKE_HOST": "proxy.example.com", "SNOWFLAKE_PROTOCOL": "http"}
    with pytest.raises(ValueError) as refused:
        snowflake_endpoint(remote)
    assert str(refused.value) == (
        "SNOWFLAKE_PROTOCOL=http with SNOWFLAKE_HOST='proxy.example.com': plain http is allowed"
        " only to this machine (localhost, 127.0.0.0/8, ::1); use https."
    )
    with pytest.raises(ValueError, match="SNOWFLAKE_PROTOCOL=http with SNOWFLAKE_HOST=None"):
        snowflake_endpoint({"SNOWFLAKE_PROTOCOL": "http"})
    with pytest.raises(SettingsError, match="SNOWFLAKE_PORT='https'"):
        snowflake_endpoint({"SNOWFLAKE_PORT": "https"})


def test_only_this_tables_staging_tables_older_than_the_limit_are_stale():
    listed = [
        ("BTCUSDT_LOAD_0A1B2C3D", 7 * 3600.0),  # a load killed 7 h ago
        ("BTCUSDT_LOAD_DEADBEEF", 3600.0),  # a load that may still be running
        ("BTCUSDT_LOAD_deadbeef", 9e6),  # not a name the loader makes
        ("BTCUSDT_LOAD_0A1B2C3D_KEEP", 9e6),
        ("ETHUSDT_LOAD_0A1B2C3D", 9e6),  # another table's, swept by its own loads
        ("BTCUSDT", 9e6),
        ("BTCUSDT_LOAD_11111111", None),
    ]
    assert stale_staging_tables(listed, "BTCUSDT", 6 * 3600) == ["BTCUSDT_LOAD_0A1B2C3D"]


def snowflake_tables() -> list[str]:
    connection = snowflake.connector.connect(database="CRYPTODB", schema="CRYPTOSCHEMA")
    try:
        return sorted(
            name
            for (name,) in connection.cursor()
            .execute(
                "SELECT table_name FROM information_schema.tables"
                " WHERE table_schema = 'CRYPTOSCHEMA'"
            )
            .fetchall()
        )
    finally:
        connection.close()


@pytest.mark.faults
def test_a_snowflake_load_drops_the_staging_tables_killed_loads_left(fake_snowflake):
    connection = snowflake.connector.connect(database="CRYPTODB", schema="CRYPTOSCHEMA")
    for name in ("BTCUSDT_LOAD_0A1B2C3D", "BTCUSDT_LOADED_BY_HAND", "ETHUSDT_LOAD_0A1B2C3D"):
        connection.cursor().execute(f"CREATE TRANSIENT TABLE {name} LIKE BTCUSDT")
    connection.close()
    rows = synthetic_days("2024-01-01", 1)
    loader = warehouse_loader(
        dg.DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-01-02"),
        lambda: [("2024-01-01", warehouse_day(rows))],
    )
    io_manager = SnowflakeWarehouseIOManager(
        account="testaccount",
        user="pipeline",
        password="pw",
        warehouse="CRYPTO_WH",
        database="CRYPTODB",
        schema="CRYPTOSCHEMA",
    )
    result = dg.materialize(
        [loader], resources={"warehouse_io_manager": io_manager}, partition_key="2024-01-01"
    )
    assert result.success
    # fakesnow dates every table's CREATED 1970-01-01, so the hand-made one counts as stale
    assert "BTCUSDT_LOAD_0A1B2C3D" not in snowflake_tables()
    assert [name for name in snowflake_tables() if "LOAD" in name] == [
        "BTCUSDT_LOADED_BY_HAND",
        "ETHUSDT_LOAD_0A1B2C3D",
    ]


def test_analytics_without_a_warehouse_says_so_in_one_line_and_creates_nothing(tmp_path):
    missing, empty = tmp_path / "missing", tmp_path / "empty"
    empty.mkdir()
    duckdb.connect(str(empty / "cryptodb.duckdb")).close()  # a file without the klines table
    started = time.monotonic()
    runs = {
        home: subprocess.Popen(
            [sys.executable, "-m", "crypto_assets.cli", "analytics"],
            env={**os.environ, "CRYPTO_ASSETS_ENV": "local", "CRYPTO_ASSETS_HOME": str(home)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for home in (missing, empty)
    }
    outputs = {home: process.communicate(timeout=120) for home, process in runs.items()}
    assert runs[missing].returncode == 2
    assert outputs[missing][1] == (
        f"crypto-assets: no warehouse at {missing / 'cryptodb.duckdb'}: load some days first"
        " (make materialize DATE=YYYY-MM-DD).\n"
    )
    assert not missing.exists()
    assert runs[empty].returncode == 2
    last_line = outputs[empty][1].strip().splitlines()[-1]
    assert last_line.startswith("crypto-assets: cannot read cryptoschema.btcusdt: Catalog Error:")
    assert "Traceback" not in outputs[empty][1]
    assert time.monotonic() - started < 60


def test_the_dashboard_is_served_with_error_details_hidden_from_the_browser():
    command = dashboard_command("127.0.0.1", 8501)
    # "false" is Streamlit's deprecated spelling of "stacktrace": it shows the traceback
    assert command[command.index("--client.showErrorDetails") + 1] == "none"


@pytest.mark.parametrize(
    ("interval", "minutes"), [("1m", 1), ("15m", 15), ("4h", 240), ("1d", 1440)]
)
def test_the_dashboard_counts_its_candles_in_whole_minutes(interval, minutes):
    assert base_minutes(interval) == minutes


def test_one_second_candles_are_refused_by_the_dashboard_not_drawn_as_1m():
    with pytest.raises(ValueError) as refused:
        base_minutes("1s")
    assert str(refused.value) == (
        "CRYPTO_ASSETS_INTERVAL='1s': the dashboard draws candles of one minute or more; load 1m"
        " candles for it (the pipeline itself handles 1s)."
    )
    started = subprocess.run(
        [sys.executable, "-m", "crypto_assets.cli", "dashboard", "--port", str(dead_port())],
        env={**os.environ, "CRYPTO_ASSETS_ENV": "local", "CRYPTO_ASSETS_INTERVAL": "1s"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert started.returncode == 2
    assert started.stderr == f"crypto-assets: {refused.value}\n"


@pytest.mark.filterwarnings("ignore:Arrow output on a DB-API result:UserWarning")
def test_every_dashboard_session_drops_its_secondary_roles_first(fakesnow_server):
    """Through the real connector to fakesnow's server, via a proxy that records statements
    (fakesnow cannot parse USE SECONDARY ROLES, so the proxy has it run SELECT 1 there)."""
    with RecordingSnowflakeProxy(
        fakesnow_server["host"],
        fakesnow_server["port"],
        stand_ins={"USE SECONDARY ROLES NONE": "SELECT 1"},
    ) as proxy:
        settings = snowflake_connector_settings(
            {
                "SNOWFLAKE_ACCOUNT": "fakesnow",
                "SNOWFLAKE_WAREHOUSE": "CRYPTO_WH",
                "CRYPTO_ASSETS_DASHBOARD_SNOWFLAKE_USER": "CRYPTO_DASHBOARD_SVC",
                "CRYPTO_ASSETS_DASHBOARD_SNOWFLAKE_PASSWORD": "dashboard-secret",
                "SNOWFLAKE_HOST": "127.0.0.1",
                "SNOWFLAKE_PORT": str(proxy.port),
                "SNOWFLAKE_PROTOCOL": "http",
            }
        )
        warehouse = SnowflakeWarehouse(
            settings={**settings, "session_parameters": fakesnow_server["session_parameters"]},
            schema="CRYPTOSCHEMA",
        )
        for _ in range(2):
            with warehouse.session() as session:
                assert session.frame("SELECT 41 + ? AS answer", [1])["answer"].tolist() == [42]
    assert proxy.statements == [
        "USE SECONDARY ROLES NONE",
        "SELECT 41 + ? AS answer",
        "USE SECONDARY ROLES NONE",
        "SELECT 41 + ? AS answer",
    ]


def test_sql_creates_the_dashboard_user_with_no_secondary_roles_and_only_its_role():
    path = SQL_DIR / "06_read_only_role.sql"
    with path.open() as text:
        statements = [
            " ".join(sql.split()) for sql, _ in split_statements(text, remove_comments=True)
        ]
    users = [sql for sql in statements if sql.startswith("CREATE USER")]
    assert users == [
        "CREATE USER IF NOT EXISTS CRYPTO_DASHBOARD_SVC TYPE = SERVICE"
        " DEFAULT_ROLE = CRYPTO_DASHBOARD DEFAULT_SECONDARY_ROLES = ()"
        " DEFAULT_WAREHOUSE = CRYPTO_WH"
        " DEFAULT_NAMESPACE = CRYPTODB.CRYPTOSCHEMA"
        " COMMENT = 'crypto_assets: market dashboard service user - CRYPTO_DASHBOARD only';"
    ]
    assert [sql for sql in statements if "TO USER" in sql] == [
        "GRANT ROLE CRYPTO_DASHBOARD TO USER CRYPTO_DASHBOARD_SVC;"
    ]
    assert statements[statements.index(users[0]) - 1] == "USE ROLE USERADMIN;"
