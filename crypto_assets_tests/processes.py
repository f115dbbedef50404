"""What the tests that start real processes share: a free loopback port (never a fixed one, the
machine runs other stacks), and process groups stopped so nothing a test started outlives it."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DAGSTER_DAEMON = str(Path(sys.executable).parent / "dagster-daemon")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_daemon(env: dict[str, str], log: Path) -> subprocess.Popen:
    """The real ``dagster-daemon`` for the code location, in a session of its own (so a test
    can signal its whole group: daemon, code server, run workers), output to ``log``."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [DAGSTER_DAEMON, "run", "-m", "crypto_assets.definitions"],
            env=env,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def live_members(pgid: int) -> list[str]:
    """Processes (not zombies) in process group ``pgid``, as 'pid command'."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            text = stat.read_text()
            state, _ppid, group = text[text.rindex(")") + 2 :].split()[:3]
            if int(group) == pgid and state != "Z":
                members.append(f"{stat.parent.name} {text[text.index('(') : text.rindex(')') + 1]}")
    return members


def left_in_groups(groups: list[int], deadline: float, poll: float) -> list[str]:
    """Waits until every process of ``groups`` has exited or ``time.monotonic()`` passes
    ``deadline``; returns those still running."""
    while time.monotonic() < deadline and any(live_members(group) for group in groups):
        time.sleep(poll)
    return [member for group in groups for member in live_members(group)]


def kill_groups(groups: list[int]) -> None:
    """SIGKILL whatever is left of ``groups``: a failed test must not leave its stack running."""
    for group in groups:
        if live_members(group):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)


def stop_process_groups(processes: list[subprocess.Popen], timeout: float = 30) -> list[str]:
    """SIGTERM each process group we started, SIGKILL what is left; returns the survivors."""
    for process in processes:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
    left_in_groups([process.pid for process in processes], deadline, 0.5)
    kill_groups([process.pid for process in processes])
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
    time.sleep(0.5)
    return [member for process in processes for member in live_members(process.pid)]
