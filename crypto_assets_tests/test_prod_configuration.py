"""Prod configuration without a cloud account, on loopback with real parts.

- Snowflake key-pair auth reaches both Snowflake resources as ``dg.EnvVar``s, never a value, and
  no secret shows in ``repr()``, in what the UI is sent (the repository snapshot), or in what a run
  stores (run config, job snapshot, event log).
- ``CRYPTO_ASSETS_S3_SSE=AES256`` makes every Parquet object server-side encrypted (moto's server).
- A Snowflake that refuses the login (a tiny HTTP server speaking the connector's login protocol)
  fails the run with Snowflake's own reason, and no secret in the failure.
- ``deploy/dagster.prod.yaml`` passes Dagster's instance-config validation and builds the run queue
  it promises (storage swapped for SQLite, so no Postgres is needed), and the guide quotes it
  faithfully.
"""

import gzip
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import dagster as dg
import fakesnow
import jwt
import pytest
import snowflake.connector
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from dagster._config import process_config
from dagster._core.instance.config import dagster_instance_config
from dagster._core.instance.ref import InstanceRef
from dagster._core.remote_representation.external_data import (
    RepositorySnap,
    ResourceConfigEnvVarSnap,
)
from dagster._core.run_coordinator import QueuedRunCoordinator
from dagster._core.storage.config import pg_config
from dagster._serdes import serialize_value

from crypto_assets.resources import prod_resources, snowflake_settings
from crypto_assets.storage.parquet import partition_object_key
from crypto_assets.storage.warehouse_snowflake import (
    SnowflakeResource,
    SnowflakeWarehouse,
    SnowflakeWarehouseIOManager,
)
from crypto_assets_tests.lineage import lineage_definitions, materialize_days
from crypto_assets_tests.prod_stack import (
    PASSWORD,
    PROD_ENV,
    RAW_BUCKET,
    TRANSFORMED_BUCKET,
    s3_client,
    table_ddl,
)

DEPLOY_DIR = Path(__file__).resolve().parents[1] / "deploy"
PROD_INSTANCE_YAML = "dagster.prod.yaml"
PASSPHRASE = "pkpass-9Zr4-never-shown"


# --- key pair ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def key_pair() -> tuple[str, rsa.RSAPublicKey]:
    """An encrypted PKCS#8 PEM key, as the guide's openssl commands make it, and its public half."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(PASSPHRASE.encode()),
    ).decode()
    assert pem.startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    return pem, key.public_key()


def key_pair_env(tmp_path: Path, pem: str, how: str) -> dict[str, str]:
    """Prod settings with key-pair auth: the key as a file path or inline, never a password."""
    if how == "path":
        key_file = tmp_path / "rsa_key.p8"
        key_file.write_text(pem)
        key_file.chmod(0o600)
        auth = {"SNOWFLAKE_PRIVATE_KEY_PATH": str(key_file)}
    else:
        auth = {"SNOWFLAKE_PRIVATE_KEY": pem}
    return {**PROD_ENV, **auth, "SNOWFLAKE_PRIVATE_KEY_PASSWORD": PASSPHRASE}


def secret_values(environ: dict[str, str]) -> list[str]:
    """The values that must never leave the environment: password, passphrase, key material."""
    secrets = [
        environ[name]
        for name in ("SNOWFLAKE_PASSWORD", "SNOWFLAKE_PRIVATE_KEY_PASSWORD")
        if name in environ
    ]
    pem = environ.get("SNOWFLAKE_PRIVATE_KEY") or (
        Path(environ["SNOWFLAKE_PRIVATE_KEY_PATH"]).read_text()
        if "SNOWFLAKE_PRIVATE_KEY_PATH" in environ
        else ""
    )
    secrets += [line for line in pem.splitlines()[1:-1] if line]  # the base64 body, line by line
    return secrets


def assert_no_secret(text: str, secrets: list[str], where: str) -> None:
    leaked = [secret[:8] + "..." for secret in secrets if secret in text]
    assert not leaked, f"secret values {leaked} appear in {where}"


def snowflake_configs(resources: dict[str, Any]) -> dict[str, dg.ConfigurableResource]:
    return {
        "warehouse_io_manager": resources["warehouse_io_manager"],
        "warehouse.snowflake": resources["warehouse"].snowflake,
    }


@pytest.mark.parametrize(
    ("how", "variable", "field"),
    [
        ("path", "SNOWFLAKE_PRIVATE_KEY_PATH", "private_key_path"),
        ("inline", "SNOWFLAKE_PRIVATE_KEY", "private_key"),
    ],
)
def test_key_pair_auth_is_configured_by_env_var_name_only(
    tmp_path, monkeypatch, key_pair, how, variable, field
):
    environ = key_pair_env(tmp_path, key_pair[0], how)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    resources = prod_resources(environ)

    for name, config in snowflake_configs(resources).items():
        key_setting = getattr(config, field)
        assert isinstance(key_setting, dg.EnvVar), name
        assert key_setting.env_var_name == variable, name
        assert isinstance(config.private_key_password, dg.EnvVar), name
        assert config.private_key_password.env_var_name == "SNOWFLAKE_PRIVATE_KEY_PASSWORD"
        other_fields = {"password", "private_key", "private_key_path"} - {field}
        assert all(getattr(config, other) is None for other in other_fields), name

    secrets = secret_values(environ)
    assert_no_secret(repr(resources), secrets, "repr() of the resources")

    # What the code server sends to the webserver: resource config shows env var names only.
    snapshot = RepositorySnap.from_def(lineage_definitions(resources).get_repository_def())
    assert_no_secret(serialize_value(snapshot), secrets, "the repository snapshot (UI)")
    shown = next(r for r in snapshot.resources if r.name == "warehouse_io_manager")
    assert shown.configured_values[field] == ResourceConfigEnvVarSnap(name=variable)
    assert shown.configured_values["private_key_password"] == ResourceConfigEnvVarSnap(
        name="SNOWFLAKE_PRIVATE_KEY_PASSWORD"
    )
    assert "password" not in shown.configured_values
    assert {variable, "SNOWFLAKE_PRIVATE_KEY_PASSWORD"} <= set(snapshot.utilized_env_vars or {})


def test_password_auth_is_configured_by_env_var_name_only(monkeypatch):
    environ = {**PROD_ENV, "SNOWFLAKE_PASSWORD": PASSWORD}
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    resources = prod_resources(environ)
    for name, config in snowflake_configs(resources).items():
        assert isinstance(config.password, dg.EnvVar), name
        assert config.password.env_var_name == "SNOWFLAKE_PASSWORD"
        assert config.private_key is None and config.private_key_path is None, name
    assert_no_secret(repr(resources), [PASSWORD], "repr() of the resources")
    snapshot = RepositorySnap.from_def(lineage_definitions(resources).get_repository_def())
    assert_no_secret(serialize_value(snapshot), [PASSWORD], "the repository snapshot (UI)")


def test_alert_secrets_are_configured_by_env_var_name_only(monkeypatch):
    webhook = "https://hooks.example.invalid/services/T0/B0/wh-3Kp8-never-shown"
    environ = {
        **PROD_ENV,
        "SNOWFLAKE_PASSWORD": PASSWORD,
        "CRYPTO_ASSETS_ALERT_WEBHOOK_URL": webhook,
        "SLACK_BOT_TOKEN": "xoxb-slack-5Wm1-never-shown",
    }
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    resources = prod_resources(environ)
    secrets = [webhook, environ["SLACK_BOT_TOKEN"]]
    assert_no_secret(repr(resources), secrets, "repr() of the resources")
    snapshot = RepositorySnap.from_def(lineage_definitions(resources).get_repository_def())
    assert_no_secret(serialize_value(snapshot), secrets, "the repository snapshot (UI)")


# --- S3 on moto's server -----------------------------------------------------------------------


def test_sse_aes256_encrypts_every_object(prod_env, monkeypatch):
    monkeypatch.setenv("CRYPTO_ASSETS_S3_SSE", "AES256")
    environ = {**prod_env, "CRYPTO_ASSETS_S3_SSE": "AES256"}
    with fakesnow.patch(
        extra_targets=["dagster_snowflake_pandas.snowflake_pandas_type_handler.write_pandas"]
    ):
        connection = snowflake.connector.connect(database="CRYPTODB", schema="CRYPTOSCHEMA")
        for statement in table_ddl():
            connection.cursor().execute(statement)
        connection.close()
        result = materialize_days(prod_resources(environ), "2024-01-01")
    assert result.success

    s3 = s3_client(prod_env["AWS_ENDPOINT_URL_S3"])
    key = partition_object_key("BTCUSDT", "1m", "2024-01-01")
    for bucket in (RAW_BUCKET, TRANSFORMED_BUCKET):
        assert [item["Key"] for item in s3.list_objects_v2(Bucket=bucket)["Contents"]] == [key]
        assert s3.head_object(Bucket=bucket, Key=key)["ServerSideEncryption"] == "AES256"


# --- a Snowflake that refuses the login ----------------------------------------------------------

INCORRECT_PASSWORD = "Incorrect username or password was specified."
INVALID_JWT = "JWT token is invalid."


class RefusingSnowflake:
    """Answers the connector's POST /session/v1/login-request with Snowflake's failure JSON.

    Password logins get 390100 (wrong user or password), key-pair (JWT) logins 390144 (what
    Snowflake answers when the public key on the user does not match). Login bodies are kept.
    """

    def __init__(self) -> None:
        self.logins: list[dict[str, Any]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if not self.path.startswith("/session/v1/login-request"):
                    self.send_error(404)  # nothing but a login comes before a session exists
                    return
                data = json.loads(body)["data"]
                owner.logins.append(data)
                code, message = (
                    ("390144", INVALID_JWT)
                    if data.get("AUTHENTICATOR") == "SNOWFLAKE_JWT"
                    else ("390100", INCORRECT_PASSWORD)
                )
                answer = {"data": None, "code": code, "message": message, "success": False}
                payload = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> "RefusingSnowflake":
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def pointed_at(resources: dict[str, Any], environ: dict[str, str], port: int) -> dict[str, Any]:
    """The prod resources with both Snowflake resources sent to 127.0.0.1:port over HTTP.

    prod_resources has no setting for a Snowflake host, so the same settings are rebuilt with
    the connector's host/port/protocol in additional_snowflake_connection_args.
    """
    endpoint = {"host": "127.0.0.1", "port": port, "protocol": "http", "login_timeout": 10}
    settings = {**snowflake_settings(environ), "schema": "CRYPTOSCHEMA"}
    return {
        **resources,
        "warehouse_io_manager": SnowflakeWarehouseIOManager(
            **settings, additional_snowflake_connection_args=endpoint
        ),
        "warehouse": SnowflakeWarehouse(
            snowflake=SnowflakeResource(**settings, additional_snowflake_connection_args=endpoint),
            schema_name="CRYPTOSCHEMA",
        ),
    }


def stored_run_text(instance: dg.DagsterInstance, run_id: str) -> str:
    """Everything the instance keeps about a run: run config, job snapshot and event log."""
    run = instance.get_run_by_id(run_id)
    assert run is not None
    parts = [serialize_value(run), json.dumps(run.run_config, default=str)]
    if run.job_snapshot_id:
        parts.append(serialize_value(instance.get_job_snapshot(run.job_snapshot_id)))
    parts += [serialize_value(entry) for entry in instance.all_logs(run_id)]
    return "\n".join(parts)


@pytest.mark.parametrize("auth", ["password", "key pair"])
def test_a_refused_snowflake_login_fails_the_run_naming_the_cause(
    prod_env, monkeypatch, tmp_path, key_pair, instance, auth
):
    environ = dict(prod_env)
    if auth == "key pair":
        del environ["SNOWFLAKE_PASSWORD"]
        monkeypatch.delenv("SNOWFLAKE_PASSWORD")
        key_env = key_pair_env(tmp_path, key_pair[0], "path")
        environ.update(key_env)
        for name, value in key_env.items():
            monkeypatch.setenv(name, value)
    expected = INVALID_JWT if auth == "key pair" else INCORRECT_PASSWORD

    with RefusingSnowflake() as snowflake_server:
        resources = pointed_at(prod_resources(environ), environ, snowflake_server.port)
        result = materialize_days(resources, "2024-01-01", instance=instance)

    assert not result.success
    failures = [event for event in result.all_events if event.is_step_failure]
    assert [event.step_key for event in failures] == ["snowflake_btcusdt"]
    failure = str(failures[0].step_failure_data.error)
    assert expected in failure
    assert "Failed to connect to DB" in failure

    assert len(snowflake_server.logins) == 1
    login = snowflake_server.logins[0]
    assert login["LOGIN_NAME"] == "pipeline"
    assert login["ACCOUNT_NAME"] == "testaccount"
    if auth == "key pair":
        # The key reached the connector: a JWT signed with it, and no password at all.
        assert "PASSWORD" not in login
        claims = jwt.decode(login["TOKEN"], key_pair[1], algorithms=["RS256"])
        assert claims["sub"] == "TESTACCOUNT.PIPELINE"
    else:
        assert login["PASSWORD"] == PASSWORD  # sent to Snowflake, and only there

    secrets = secret_values(environ)
    assert_no_secret(failure, secrets, "the step failure")
    assert_no_secret(stored_run_text(instance, result.run_id), secrets, "the stored run")


# --- deploy/dagster.prod.yaml ------------------------------------------------------------------


def test_prod_instance_yaml_is_valid_dagster_instance_config(tmp_path, monkeypatch):
    raw = yaml.safe_load((DEPLOY_DIR / PROD_INSTANCE_YAML).read_text())
    postgres = raw["storage"]["postgres"]["postgres_db"]
    for field in ("username", "password", "hostname", "db_name", "port"):
        assert set(postgres[field]) == {"env"}, f"postgres_db.{field} must be an env: reference"

    # Dagster's own validation of a dagster.yaml against the instance schema.
    config, custom_instance_class = dagster_instance_config(
        str(DEPLOY_DIR), config_filename=PROD_INSTANCE_YAML
    )
    assert custom_instance_class is None
    assert set(config["storage"]) == {"postgres"}

    # The Postgres settings resolve from the environment (dagster-postgres reads them the same way).
    pg_env = {
        "DAGSTER_PG_USERNAME": "dagster",
        "DAGSTER_PG_PASSWORD": "pg-secret",
        "DAGSTER_PG_HOST": "db.internal",
        "DAGSTER_PG_DB": "dagster",
        "DAGSTER_PG_PORT": "5433",
    }
    for name, value in pg_env.items():
        monkeypatch.setenv(name, value)
    resolved = process_config(pg_config(), config["storage"]["postgres"])
    assert resolved.success, resolved.errors
    assert resolved.value["postgres_db"] == {
        "username": "dagster",
        "password": "pg-secret",
        "hostname": "db.internal",
        "db_name": "dagster",
        "port": 5433,
        "params": {},
        "scheme": "postgresql+psycopg2",
    }

    # The rest of the file builds a real instance once storage is swapped for SQLite.
    ref = InstanceRef.from_dir(
        str(tmp_path),
        config_dir=str(DEPLOY_DIR),
        config_filename=PROD_INSTANCE_YAML,
        overrides={"storage": {"sqlite": {"base_dir": str(tmp_path)}}},
    )
    with dg.DagsterInstance.from_ref(ref) as prod_instance:
        assert isinstance(prod_instance.run_coordinator, QueuedRunCoordinator)
        assert type(prod_instance.run_launcher).__name__ == "WorkerCheckingRunLauncher"
        assert prod_instance.run_monitoring_enabled
        assert prod_instance.run_monitoring_poll_interval_seconds == 30
        assert prod_instance.run_monitoring_max_runtime_seconds == 0
        queue = prod_instance.get_concurrency_config().run_queue_config
        assert queue is not None
        assert queue.max_concurrent_runs == 4
        assert {limit["key"]: limit["limit"] for limit in queue.tag_concurrency_limits} == {
            "dagster/partition": 1,
            "dagster/backfill": 1,
        }


def test_guide_shows_the_same_instance_config_as_the_deploy_file(tmp_path):
    """docs/going-to-production.md quotes deploy/dagster.prod.yaml; the two must not drift."""
    guide = (DEPLOY_DIR.parent / "docs" / "going-to-production.md").read_text()
    assert "deploy/dagster.prod.yaml" in guide
    section = guide.split("### `dagster.yaml`", 1)[1]
    snippet = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "dagster.yaml").write_text(snippet)
    shown, _ = dagster_instance_config(str(tmp_path))
    deployed, _ = dagster_instance_config(str(DEPLOY_DIR), config_filename=PROD_INSTANCE_YAML)
    ignored = {"telemetry"}  # kept out of the guide's excerpt
    assert {k: v for k, v in shown.items() if k not in ignored} == {
        k: v for k, v in deployed.items() if k not in ignored
    }
