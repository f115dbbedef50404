"""Shared fixtures: a Binance stand-in on loopback and Dagster definitions wired to a temp home."""

import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import dagster as dg
import fakesnow
import pytest

from crypto_assets_tests.binance_standin import BinanceStandIn, shared_data_dir, synthetic_klines
from crypto_assets_tests.prod_stack import fake_snowflake, prod_env, s3_endpoint

__all__ = [
    "fake_snowflake",
    "prod_env",
    "s3_endpoint",
]  # fixtures of the prod stand-ins, for every test module

REAL_1M_CSV = "BTCUSDT-1m-2025-08-01_2025-08-10.csv"
LOCAL_YAML = Path(__file__).resolve().parents[1] / "deploy" / "dagster.local.yaml"
DAY_MS = 86_400_000
MEMORY = "/dev/shm"


def _closed_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(autouse=True, scope="session")
def no_real_binance() -> Iterator[None]:
    """Binance's real hosts are never a target: code that reads a Binance URL from the environment
    (the dashboard's live feed, the sensors) gets a closed loopback port unless a test points it at
    a stand-in. Connections there are refused at once, as they would be with Binance down."""
    closed = _closed_loopback_port()
    defaults = {
        "BINANCE_BASE_URL": f"http://127.0.0.1:{closed}",
        "BINANCE_STREAM_URL": f"ws://127.0.0.1:{closed}",
    }
    unset = {name: value for name, value in defaults.items() if name not in os.environ}
    os.environ.update(unset)
    yield
    for name in unset:
        os.environ.pop(name, None)


def utc_ms(day: str) -> int:
    """Epoch ms of a UTC midnight, worked out here rather than by the code under test."""
    return int(datetime.fromisoformat(day).replace(tzinfo=timezone.utc).timestamp()) * 1000


@pytest.fixture
def local_instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dg.DagsterInstance]:
    """A DAGSTER_HOME with the project's local dagster.yaml, as `make` sets it up."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(LOCAL_YAML, home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "1000")  # what the storage sets; undone after
    with dg.DagsterInstance.from_config(str(home)) as instance:
        yield instance


@pytest.fixture
def real_1m_csv() -> Path:
    path = shared_data_dir() / REAL_1M_CSV
    if not path.exists():
        pytest.skip(f"{path} is absent: real Binance klines are not available in this clone")
    return path


def synthetic_days(first_day: str, days: int, interval: str = "1m", seed: int = 7) -> list[list]:
    start = utc_ms(first_day)
    return synthetic_klines(interval, start, start + days * DAY_MS, seed=seed)


@pytest.fixture
def synthetic_rows() -> list[list]:
    """Three days of synthetic BTCUSDT 1m candles, 2024-01-01..03."""
    return synthetic_days("2024-01-01", 3)


@pytest.fixture
def synthetic_standin(synthetic_rows: list[list]) -> Iterator[BinanceStandIn]:
    """The synthetic days served as if it were 2024-01-04 00:00:30 UTC."""
    klines = {("BTCUSDT", "1m"): [list(row) for row in synthetic_rows]}
    with BinanceStandIn(klines, clock_ms=lambda: utc_ms("2024-01-04") + 30_000) as standin:
        yield standin


def memory_folder() -> str | None:
    """/dev/shm where the machine has it (Linux, CI), else the default temporary folder."""
    return MEMORY if os.access(MEMORY, os.W_OK) else None


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    """A throwaway Dagster instance with its SQLite storage in memory: every event is a commit,
    and on a busy shared disk their fsyncs were most of a range run's time (a 31-day backfill
    and its rerun: 120 s on disk, 33 s in memory). The tests check the same either way."""
    with (
        tempfile.TemporaryDirectory(dir=memory_folder(), ignore_cleanup_errors=True) as folder,
        dg.instance_for_test(temp_dir=folder) as test_instance,
    ):
        yield test_instance


@pytest.fixture(scope="session")
def fakesnow_server() -> Iterator[dict[str, Any]]:
    """fakesnow's server mode, once per session: calling ``fakesnow.server()`` imports the module
    ``fakesnow.server``, which then shadows the function, so a second call in the same process
    fails. ``:isolated:`` gives every connection its own in-memory database."""
    with fakesnow.server(session_parameters={"FAKESNOW_DB_PATH": ":isolated:"}) as kwargs:
        yield kwargs
