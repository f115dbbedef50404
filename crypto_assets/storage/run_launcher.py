"""A run launcher that tells Dagster's run monitoring when a run's worker process has died.

Dagster's ``DefaultRunLauncher`` starts each run as a subprocess of the code server and cannot
say whether that process still lives. The code server reports a worker that dies under it, but
when the code server dies too (the OOM killer, a ``kill -9`` of the daemon's process group, a
crashed daemon) nobody is left to notice: the run stays STARTED until ``max_runtime_seconds``
(2 h). Locally runs go one at a time and the fresh-data sensor waits while today's run is in
flight, so one dead worker would stop every run for those 2 hours.

This launcher reads the worker's PID from the run's ``Started process for run (pid: N)`` event
and answers the monitoring daemon's health check; the daemon marks a run whose worker is gone
as failed at its next poll (``run_monitoring: poll_interval_seconds``), and the queue moves on.
"""

import json
import os
import socket
from pathlib import Path

import dagster as dg

# Dagster exports the launcher base but not the health-check answer types (CheckRunHealthResult,
# WorkerStatus) nor the tag in which DefaultRunLauncher records the code server's address;
# run monitoring acts only on these.
from dagster._core.launcher import CheckRunHealthResult, WorkerStatus
from dagster._core.storage.tags import GRPC_INFO_TAG

PID_METADATA = "pid"
WORKER_HOST_TAG = "crypto_assets/worker_host"
"""The host of a run executed in-process by a long-lived process of ours (the live loader), whose
PID the run's ``Executing steps in process (pid: N)`` event names: judged like a code server's
worker, so a loader killed mid-run does not leave its run STARTED, holding the day's fresh-data
refresh and the queue's ``live`` lane, for ``max_runtime_seconds``."""
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", socket.gethostname()})
START_TIME_SLACK_SECONDS = 2.0
"""/proc gives a process's start in clock ticks after boot; boot time itself is whole seconds."""


def worker_pid(instance: dg.DagsterInstance, run_id: str) -> tuple[int, float] | None:
    """The run worker's PID and when it said it started, from the run's first engine event with
    a PID and no step (step subprocesses of a multiprocess executor name their step)."""
    records = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.ENGINE_EVENT, limit=20
    ).records
    for record in records:
        event = record.event_log_entry.dagster_event
        if event is None or event.step_key is not None:
            continue
        metadata = event.engine_event_data.metadata
        if PID_METADATA in metadata:
            return int(str(metadata[PID_METADATA].value)), record.event_log_entry.timestamp
    return None


def process_started_at(pid: int) -> float | None:
    """When process ``pid`` started (epoch seconds), or None if it does not exist or is a zombie
    (a dead process its parent has not reaped yet). Without /proc only existence is checked."""
    stat = Path(f"/proc/{pid}/stat")
    if not Path("/proc/stat").exists():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return float("inf")
        return 0.0
    try:
        fields = stat.read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    if fields[0] in ("Z", "X"):
        return None
    boot = next(
        int(line.split()[1])
        for line in Path("/proc/stat").read_text().splitlines()
        if line.startswith("btime ")
    )
    return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")


def worker_status(pid: int, announced_at: float) -> WorkerStatus:
    """FAILED when process ``pid`` is gone, or when the PID now belongs to a process that started
    after the worker announced itself (the PID was reused)."""
    started_at = process_started_at(pid)
    if started_at is None or started_at > announced_at + START_TIME_SLACK_SECONDS:
        return WorkerStatus.FAILED
    return WorkerStatus.RUNNING


class WorkerCheckingRunLauncher(dg.DefaultRunLauncher):
    """``DefaultRunLauncher`` plus a health check of the worker's PID for run monitoring."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: dg.DagsterRun) -> CheckRunHealthResult:
        """RUNNING unless the worker ran on this machine and its process is gone. The worker is
        a code server's subprocess or the live loader (``WORKER_HOST_TAG``). Any other run
        (``dagster asset materialize`` runs in its own process, perhaps on another machine), one
        on another host, and one whose worker has not announced its PID yet are left to
        ``max_runtime_seconds``."""
        if GRPC_INFO_TAG in run.tags:
            host = json.loads(run.tags[GRPC_INFO_TAG]).get("host")
        elif WORKER_HOST_TAG in run.tags:
            host = run.tags[WORKER_HOST_TAG]
        else:
            return CheckRunHealthResult(
                WorkerStatus.RUNNING, "not launched by a code server or the live loader"
            )
        if host not in LOCAL_HOSTS:
            return CheckRunHealthResult(WorkerStatus.RUNNING, "worker on another host")
        announced = worker_pid(self._instance, run.run_id)
        if announced is None:
            return CheckRunHealthResult(WorkerStatus.RUNNING, "no worker PID recorded yet")
        pid, announced_at = announced
        status = worker_status(pid, announced_at)
        message = "is running" if status == WorkerStatus.RUNNING else "is gone"
        return CheckRunHealthResult(
            status, f"run worker process {pid} {message}", run_worker_id=str(pid)
        )
