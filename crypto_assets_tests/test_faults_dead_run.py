"""A refresh run whose worker dies with SIGKILL, under the real dagster-daemon.

The daemon runs the local loop (as `crypto-assets platform` starts it) against the Binance
stand-in with deploy/dagster.local.yaml (one refresh at a time). A worker killed alone is
reported by its code server at once, even with Dagster's stock launcher; what used to hang is a
worker that dies together with its code server. So the whole daemon process group (daemon, code
server, run worker) gets SIGKILL mid-run, as the OOM killer or a crash would leave it, and a new
daemon starts, as systemd restarts it. The killed run must be marked failed within 2 minutes,
and the sensor's next refresh must then run and succeed instead of waiting behind a run that
stays STARTED for max_runtime_seconds (2 h), or being skipped because the dead run was created
after the candle closed; the day's rows must then be in the warehouse.
"""

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import dagster as dg
import pytest
import yaml

from crypto_assets.storage.run_launcher import worker_pid
from crypto_assets_tests.binance_standin import BinanceStandIn, synthetic_klines
from crypto_assets_tests.lineage import warehouse_open_times
from crypto_assets_tests.processes import start_daemon

pytestmark = [pytest.mark.e2e, pytest.mark.faults]

ROOT = Path(__file__).resolve().parents[1]
DAY = "2024-01-01"
NOON_MS = 1_704_110_400_000  # 2024-01-01T12:00:00Z
MINUTE_MS = 60_000
HOUR_MS = 3_600_000
MONITORING_POLL_SECONDS = 2
SENSOR_INTERVAL_SECONDS = 3

T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, logs: list[Path]) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.1)
    tails = "\n".join(f"--- {log.name}\n{log.read_text()[-3000:]}" for log in logs)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{tails}")


@pytest.fixture
def dagster_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """deploy/dagster.local.yaml, with run monitoring polling every 2 s instead of 30 s."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    config = yaml.safe_load((ROOT / "deploy" / "dagster.local.yaml").read_text())
    config["run_monitoring"]["poll_interval_seconds"] = MONITORING_POLL_SECONDS
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    yield home


def pid_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_a_refresh_whose_worker_died_fails_within_2_minutes_and_the_next_refresh_completes(
    tmp_path: Path, dagster_home: Path
) -> None:
    clock = {"ms": NOON_MS + 30_000}
    klines = {("BTCUSDT", "1m"): synthetic_klines("1m", NOON_MS - 12 * HOUR_MS, NOON_MS + HOUR_MS)}
    logs = [tmp_path / "daemon-killed.log", tmp_path / "daemon-restarted.log"]
    daemons: list[subprocess.Popen] = []
    with BinanceStandIn(klines, clock_ms=lambda: clock["ms"]) as standin:
        env = {
            **os.environ,
            "CRYPTO_ASSETS_ENV": "local",
            "DAGSTER_HOME": str(dagster_home),
            "CRYPTO_ASSETS_HOME": str(tmp_path / "data"),
            "BINANCE_BASE_URL": standin.url,
            "CRYPTO_ASSETS_SENSOR_INTERVAL_SECONDS": str(SENSOR_INTERVAL_SECONDS),
            # the local loop on by itself, as `crypto-assets platform` starts it, with no history
            # to bootstrap
            "CRYPTO_ASSETS_AUTOSTART": "1",
            "CRYPTO_ASSETS_BOOTSTRAP_DAYS": "0",
        }
        env.pop("CRYPTO_ASSETS_ALERT_WEBHOOK_URL", None)
        try:
            daemons.append(start_daemon(env, logs[0]))
            with dg.DagsterInstance.get() as instance:

                def first_refresh() -> dg.DagsterRun | None:
                    runs = instance.get_runs(limit=1)
                    return runs[0] if runs else None

                killed = wait_for("the sensor's first refresh", first_refresh, 120, logs)
                assert killed.tags["dagster/run_key"] == f"{DAY}@{NOON_MS - MINUTE_MS}"

                def started_worker() -> int | None:
                    run = instance.get_run_by_id(killed.run_id)
                    announced = worker_pid(instance, killed.run_id)
                    started = run.status == dg.DagsterRunStatus.STARTED
                    return announced[0] if started and announced else None

                pid = wait_for("its worker to start the run", started_worker, 60, logs)
                os.killpg(daemons[0].pid, signal.SIGKILL)
                killed_at = time.monotonic()
                daemons[0].wait(timeout=10)
                wait_for("the worker to be gone", lambda: not pid_alive(pid), 10, logs)
                assert instance.get_run_by_id(killed.run_id).status == dg.DagsterRunStatus.STARTED

                daemons.append(start_daemon(env, logs[1]))
                wait_for(
                    "the dead run to be marked failed",
                    lambda: (
                        instance.get_run_by_id(killed.run_id).status == dg.DagsterRunStatus.FAILURE
                    ),
                    120 - (time.monotonic() - killed_at),
                    logs,
                )
                failed_after = time.monotonic() - killed_at
                failure = instance.get_records_for_run(
                    killed.run_id, of_type=dg.DagsterEventType.RUN_FAILURE
                ).records[0]
                assert f"run worker process {pid} is gone" in failure.event_log_entry.message

                clock["ms"] += 5 * MINUTE_MS
                next_key = f"{DAY}@{NOON_MS + 4 * MINUTE_MS}"

                def next_refresh_done() -> dg.DagsterRun | None:
                    runs = instance.get_runs(dg.RunsFilter(tags={"dagster/run_key": next_key}))
                    return runs[0] if runs and runs[0].is_finished else None

                following = wait_for("the next refresh to finish", next_refresh_done, 120, logs)
                refreshed_after = time.monotonic() - killed_at
                assert following.status == dg.DagsterRunStatus.SUCCESS
                assert following.tags["dagster/partition"] == DAY
                print(
                    f"killed run failed {failed_after:.1f} s after the kill, the next refresh"
                    f" succeeded {refreshed_after:.1f} s after it"
                )
        finally:
            for daemon in daemons:
                if daemon.poll() is None:
                    os.killpg(daemon.pid, signal.SIGTERM)
                    daemon.wait(timeout=30)
    # every candle of the day closed by 12:05 (the stand-in's clock), once: 00:00 to 12:04
    assert warehouse_open_times(tmp_path / "data" / "cryptodb.duckdb") == list(
        range(NOON_MS - 12 * HOUR_MS, NOON_MS + 5 * MINUTE_MS, MINUTE_MS)
    )
