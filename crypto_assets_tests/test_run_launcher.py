"""The launcher's health check tells a live run worker from a dead one and from a reused PID."""

import subprocess
import sys
import time

from dagster._core.launcher import WorkerStatus

from crypto_assets.storage.run_launcher import process_started_at, worker_status


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
