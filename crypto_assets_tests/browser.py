"""What the browser tests share: Debian's headless Chromium with the flags that keep it quiet
offline, and ``crypto-assets dashboard`` started as a process on a free loopback port."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from crypto_assets_tests.processes import free_port

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CHROMIUM_ABSENT = f"{CHROMIUM} is absent (CI installs Debian's chromium)"


@contextmanager
def chromium() -> Iterator:
    """A playwright Browser on Debian's Chromium, closed afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def dashboard_server(settings: dict[str, str], log_path: Path) -> Iterator[str]:
    """``crypto-assets dashboard`` with ``settings`` over the test's environment (no
    DAGSTER_HOME of the caller's), logging to ``log_path``; yields its URL once it answers."""
    port = free_port()
    env = {**os.environ, **settings, "PYTHONPATH": str(ROOT)}
    env.pop("DAGSTER_HOME", None)
    log = log_path.open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "crypto_assets.cli", "dashboard", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, log_path.read_text()
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as answer:
                    if answer.read() == b"ok":
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the dashboard did not start in 60 s"
            time.sleep(0.2)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()
