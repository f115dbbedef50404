"""The launcher's health check tells a live run worker from a dead one and from a reused PID,
and judges only workers that a code server on this machine started."""

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.events import EngineEventData
from dagster._core.launcher import WorkerStatus
from dagster._core.storage.tags import GRPC_INFO_TAG

from crypto_assets.storage.run_launcher import (
    WORKER_HOST_TAG,
    WorkerCheckingRunLauncher,
    process_started_at,
    worker_pid,
    worker_status,
)

STARTED = dg.DagsterRunStatus.STARTED


def test_a_live_worker_is_running_and_a_reaped_one_failed() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    announced_at = time.time()
    try:
        assert worker_status(child.pid, announced_at) == WorkerStatus.RUNNING
    finally:
        child.kill()
        child.wait()
    assert process_started_at(child.pid) is None
    assert worker_status(child.pid, announced_at) == WorkerStatus.FAILED


def test_an_unreaped_dead_worker_failed() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    announced_at = time.time()
    deadline = time.monotonic() + 10
    while process_started_at(child.pid) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert worker_status(child.pid, announced_at) == WorkerStatus.FAILED
    child.wait()


def test_a_pid_taken_by_a_process_started_after_the_worker_announced_itself_failed() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        started = process_started_at(child.pid)
        assert started is not None
        assert worker_status(child.pid, announced_at=started - 60) == WorkerStatus.FAILED
        assert worker_status(child.pid, announced_at=started + 0.5) == WorkerStatus.RUNNING
    finally:
        child.kill()
        child.wait()


def health(tags: dict[str, str], pid: int) -> WorkerStatus:
    """The launcher's answer for a STARTED run whose worker announced ``pid``."""
    instance = dg.DagsterInstance.ephemeral()
    run = dg.DagsterRun(
        job_name="kline_lineage", run_id=str(uuid.uuid4()), status=STARTED, tags=tags
    )
    instance.add_run(run)
    instance.report_engine_event(
        f"Started process for run (pid: {pid}).", run, EngineEventData.in_process(pid)
    )
    launcher = WorkerCheckingRunLauncher()
    launcher.register_instance(instance)
    return launcher.check_run_worker_health(run).status


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_only_runs_launched_by_a_code_server_on_this_machine_are_judged() -> None:
    local = {GRPC_INFO_TAG: json.dumps({"host": "localhost", "socket": "/tmp/x"})}
    remote = {GRPC_INFO_TAG: json.dumps({"host": "10.1.2.3", "port": 4000})}
    assert health(local, dead_pid()) == WorkerStatus.FAILED
    assert health(local, os.getpid()) == WorkerStatus.RUNNING
    assert health(remote, dead_pid()) == WorkerStatus.RUNNING
    assert health({}, dead_pid()) == WorkerStatus.RUNNING  # e.g. `dagster asset materialize`


def test_the_live_loaders_runs_on_this_machine_are_judged_too() -> None:
    assert health({WORKER_HOST_TAG: socket.gethostname()}, dead_pid()) == WorkerStatus.FAILED
    assert health({WORKER_HOST_TAG: socket.gethostname()}, os.getpid()) == WorkerStatus.RUNNING
    assert health({WORKER_HOST_TAG: "another-host"}, dead_pid()) == WorkerStatus.RUNNING


SLOW_LOADER = """
import time

import dagster as dg

from crypto_assets.automation.live_loader import dagster_refresh
from crypto_assets.klines.partitions import daily_partitions


@dg.asset(partitions_def=daily_partitions)
def slow_day() -> None:
    time.sleep(600)


job = dg.define_asset_job("kline_lineage", partitions_def=daily_partitions)
dagster_refresh(dg.Definitions(assets=[slow_day], jobs=[job]), dg.DagsterInstance.get())(
    "2024-01-02", "2024-01-02@1704189540000"
)
"""


@pytest.mark.faults
def test_a_live_loader_killed_mid_run_leaves_a_run_that_monitoring_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loader runs its refresh in its own process: SIGKILL it mid-run, and the launcher
    reports the run's worker gone (run monitoring then fails the run) instead of RUNNING for
    max_runtime_seconds, which would hold the day's fresh-data refresh and the live lane."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    loader = subprocess.Popen([sys.executable, "-c", SLOW_LOADER], cwd=tmp_path)
    try:
        with dg.DagsterInstance.get() as instance:
            launcher = WorkerCheckingRunLauncher()
            launcher.register_instance(instance)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                runs = instance.get_runs(dg.RunsFilter(statuses=[STARTED]))
                if runs and worker_pid(instance, runs[0].run_id):
                    break
                time.sleep(0.1)
            else:
                raise AssertionError("the loader's run never started its steps")
            run = runs[0]
            assert run.tags["crypto_assets/trigger"] == "live_loader"
            assert worker_pid(instance, run.run_id)[0] == loader.pid
            assert launcher.check_run_worker_health(run).status == WorkerStatus.RUNNING
            loader.kill()
            loader.wait()
            health = launcher.check_run_worker_health(instance.get_run_by_id(run.run_id))
    finally:
        loader.kill()
        loader.wait()
    assert health.status == WorkerStatus.FAILED
    assert health.msg == f"run worker process {loader.pid} is gone"
