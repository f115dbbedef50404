"""``crypto-assets platform``: the whole local platform as one process a user or a service starts.

It runs the Dagster webserver (the pipeline's UI), the Dagster daemon (sensors, schedules, the
run queue) and the market dashboard, each in a process group of its own, so the code servers and
runs they start belong to that group. Ctrl-C, SIGTERM (a service manager, no terminal) or SIGHUP
stop all of them: SIGTERM to each group, then SIGKILL to what is left once ``stop_seconds`` pass,
so the platform is gone within a service manager's usual 15 s. When one service dies, the others
are stopped too and the exit status says which failed: half a platform is worse than none.

It imports no Dagster itself (the services do), so it starts in a fraction of a second and holds
no memory of its own worth mentioning.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from crypto_assets.settings import CHECKOUT_DIR, local_home

PR_SET_PDEATHSIG = 1
"""prctl(2): the signal a process gets when its parent dies."""
STOP_SECONDS = 10.0
"""SIGTERM to SIGKILL: Dagster's processes need a few seconds to close their code servers."""
AUTOSTART_VARIABLE = "CRYPTO_ASSETS_AUTOSTART"
LIVE_LOADER_VARIABLE = "CRYPTO_ASSETS_LIVE_LOADER"
"""0 leaves the live loader out: closed candles then wait for the fresh-data sensor's runs."""

_INIT_INSTANCE = """
import dagster as dg
with dg.DagsterInstance.get() as instance:
    instance.get_runs(limit=1)
    instance.all_instigator_state()
    instance.fetch_materializations(dg.AssetKey("snowflake_btcusdt"), limit=1)
"""
"""Creates a fresh DAGSTER_HOME's SQLite databases once, before two services race to create them
(two processes stamping one schema version leave it unreadable: "more than one head")."""


@dataclass(frozen=True)
class Service:
    name: str
    command: list[str]


def platform_services(
    host: str,
    ui_port: int,
    dashboard_port: int,
    python: str = sys.executable,
    live_loader: bool = True,
) -> list[Service]:
    """The long-running processes, started from the interpreter running this command: the
    pipeline's UI and daemon, the dashboard, and the live loader (closed candles into the
    warehouse seconds after their close, see automation/live_loader.py)."""
    from crypto_assets.cli import dashboard_command

    bin_dir = Path(python).parent
    module = ["-m", "crypto_assets.definitions"]
    services = [
        Service(
            "webserver",
            [str(bin_dir / "dagster-webserver"), "-h", host, "-p", str(ui_port), *module],
        ),
        Service("daemon", [str(bin_dir / "dagster-daemon"), "run", *module]),
        Service("dashboard", dashboard_command(host, dashboard_port)),
    ]
    if live_loader:
        services.append(Service("live", [python, "-m", "crypto_assets.cli", "live"]))
    return services


def prepare_home(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment the services get: absolute homes, a dagster.yaml, automation switched on.

    A DAGSTER_HOME without dagster.yaml gets ``deploy/dagster.local.yaml``; its databases are
    created here, once. Local automation (the fresh-data sensor, the daily schedule and the
    one-time history bootstrap) defaults to running; ``CRYPTO_ASSETS_ENV=prod`` ignores it.
    """
    env = dict(environ)
    home = local_home(env)
    dagster_home = Path(env.get("DAGSTER_HOME") or home / "dagster_home").resolve()
    dagster_home.mkdir(parents=True, exist_ok=True)
    home.mkdir(parents=True, exist_ok=True)
    env.update(CRYPTO_ASSETS_HOME=str(home), DAGSTER_HOME=str(dagster_home))
    env.setdefault(AUTOSTART_VARIABLE, "1")
    if not (dagster_home / "dagster.yaml").exists():
        shutil.copy(CHECKOUT_DIR / "deploy" / "dagster.local.yaml", dagster_home / "dagster.yaml")
    if not (dagster_home / "schedules" / "schedules.db").exists():
        subprocess.run([sys.executable, "-c", _INIT_INSTANCE], env=env, check=True)
    return env


class Supervisor:
    """Starts services in their own process groups and stops them all, within a deadline."""

    def __init__(self, services: Sequence[Service], env: Mapping[str, str], stop_seconds: float):
        self.services = list(services)
        self.env = dict(env)
        self.stop_seconds = stop_seconds
        self.processes: dict[str, subprocess.Popen] = {}
        self._stop = threading.Event()
        self.signal_received: int | None = None

    def start(self) -> None:
        supervisor_pid = os.getpid()
        for service in self.services:
            self.processes[service.name] = subprocess.Popen(
                service.command,
                env=self.env,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=lambda: _stop_with_parent(supervisor_pid),
            )
        pids = ", ".join(f"{name} pid {p.pid}" for name, p in self.processes.items())
        print(f"platform: started {pids}", file=sys.stderr, flush=True)

    def request_stop(self, signum: int, _frame: object = None) -> None:
        self.signal_received = signum
        self._stop.set()

    def wait(self) -> str | None:
        """Blocks until a stop is requested or a service exits; returns that service's name."""
        while not self._stop.wait(0.5):
            for name, process in self.processes.items():
                if process.poll() is not None:
                    return name
        return None

    def stop(self) -> None:
        """SIGTERM to every group, SIGKILL to every group still alive at the deadline."""
        for process in self.processes.values():
            _signal_group(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_seconds
        while time.monotonic() < deadline and self._lingering():
            time.sleep(0.2)
        lingering = self._lingering()
        if lingering:
            print(
                f"platform: {', '.join(lingering)} still running after {self.stop_seconds:g} s;"
                " killing",
                file=sys.stderr,
                flush=True,
            )
        for process in self.processes.values():
            _signal_group(process.pid, signal.SIGKILL)
        for process in self.processes.values():
            process.wait()

    def _lingering(self) -> list[str]:
        """Services with a process left in their group (a leader that exited is reaped first:
        a zombie leader would keep its group alive to ``killpg``)."""
        for process in self.processes.values():
            process.poll()
        return [name for name, p in self.processes.items() if _group_alive(p.pid)]


def _stop_with_parent(parent_pid: int) -> None:
    """In a service's child before it runs: SIGTERM it when the supervisor dies, so a supervisor
    killed outright (SIGKILL, the OOM killer) leaves no orphaned platform behind. Linux only;
    elsewhere a service manager's process tracking has to do it."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent_pid:  # the supervisor died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_platform(
    host: str = "127.0.0.1",
    ui_port: int = 3000,
    dashboard_port: int = 8501,
    stop_seconds: float = STOP_SECONDS,
) -> int:
    """Runs until a signal or a service's exit; 128+signal after a signal, 1 after a failure."""
    env = prepare_home(os.environ)
    live_loader = env.get(LIVE_LOADER_VARIABLE, "1") != "0"
    services = platform_services(host, ui_port, dashboard_port, live_loader=live_loader)
    supervisor = Supervisor(services, env, stop_seconds)
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, supervisor.request_stop)
    supervisor.start()
    print(
        f"platform: the market on http://{host}:{dashboard_port},"
        f" the pipeline on http://{host}:{ui_port}, DAGSTER_HOME={env['DAGSTER_HOME']}",
        file=sys.stderr,
        flush=True,
    )
    failed = supervisor.wait()
    if failed is not None:
        code = supervisor.processes[failed].returncode
        print(f"platform: {failed} exited with {code}; stopping the rest", file=sys.stderr)
    else:
        print("platform: stopping", file=sys.stderr, flush=True)
    supervisor.stop()
    if supervisor.signal_received is not None:
        return 128 + supervisor.signal_received
    return 1
