"""What the range benchmarks share: a stand-in in its own process, a persistent DAGSTER_HOME
(deploy/dagster.local.yaml, as `make backfill` gets it), and wall time and peak RSS of a child.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timezone
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ASSETS = "raw_klines,clean_klines,snowflake_btcusdt"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(url: str, timeout: float) -> None:
    """Until ``url`` answers; the benchmark stops, naming it, when it does not in ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except OSError:
            time.sleep(1)
    sys.exit(f"{url} did not come up within {timeout:.0f}s")


def newest_open_time_ms(database: Path) -> int | None:
    """The warehouse's newest candle, or None while it is missing, empty or being written."""
    try:
        with duckdb.connect(str(database), read_only=True) as connection:
            newest = connection.execute(
                "select max(open_time) from cryptodb.cryptoschema.btcusdt"
            ).fetchone()[0]
    except (duckdb.Error, OSError):
        return None
    return int(newest.replace(tzinfo=timezone.utc).timestamp() * 1000) if newest else None


@contextmanager
def standin(*arguments: str) -> Iterator[str]:
    """The Binance stand-in (REST and archive on one URL) in its own process; yields its URL."""
    port = free_port()
    process = subprocess.Popen(
        [
            *(str(BIN / "python"), "-m", "crypto_assets_tests.binance_standin"),
            *("--port", str(port), *arguments),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        url = process.stdout.readline().strip()
        if not url:
            sys.exit("the stand-in did not start")
        yield url
    finally:
        process.terminate()
        process.wait()


def persistent_home(base: Path) -> dict[str, str]:
    """CRYPTO_ASSETS_HOME and a DAGSTER_HOME with the project's local dagster.yaml, as make does.

    Its databases are created before anything is measured, as a user's already exist after
    their first `make run` or `make materialize`.
    """
    dagster_home = base / "dagster_home"
    dagster_home.mkdir(parents=True)
    shutil.copy(ROOT / "deploy" / "dagster.local.yaml", dagster_home / "dagster.yaml")
    homes = {"CRYPTO_ASSETS_HOME": str(base), "DAGSTER_HOME": str(dagster_home)}
    subprocess.run(
        [str(BIN / "dagster"), "instance", "info"],
        env={**os.environ, "PYTHONPATH": str(ROOT), **homes},
        capture_output=True,
        check=True,
    )
    return homes


def measured(command: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Wall seconds and peak RSS (MiB) of one child process (its own, from wait4), and stdout."""
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        started = time.perf_counter()
        process = subprocess.Popen(command, env=env, stdout=stdout, stderr=stderr)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        stdout.seek(0)
        stderr.seek(0)
        if process.returncode != 0:
            sys.exit(f"{command[:4]} failed:\n{stderr.read().decode()[-4000:]}")
        return wall, usage.ru_maxrss / 1024, stdout.read().decode()


def backfill_command(first: str, last: str) -> list[str]:
    """What `make backfill START=first END=last` runs."""
    return [
        str(BIN / "dagster"),
        "asset",
        "materialize",
        "-m",
        "crypto_assets.definitions",
        "--select",
        ASSETS,
        "--partition-range",
        f"{first}...{last}",
    ]


def profiled(command: list[str], output: str) -> list[str]:
    """The command under py-spy: its child processes too, the thread holding the GIL sampled
    (a range run is GIL-bound), raw stacks for benchmarks/profile_breakdown.py."""
    return [
        *(str(BIN / "py-spy"), "record", "--subprocesses", "--gil", "--rate", "100"),
        *("--format", "raw", "--output", output, "--", *command),
    ]


def load_average() -> str:
    return Path("/proc/loadavg").read_text().strip() if Path("/proc/loadavg").exists() else "n/a"
