"""`make run` is the platform: ``crypto-assets platform`` starts the webserver, the daemon, the
dashboard and the live loader; a fresh local home bootstraps recent history by itself; SIGTERM
with no terminal stops everything within 15 s. Prod starts nothing by itself."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from crypto_assets.automation.bootstrap import bootstrap_history_sensor, bootstrap_range
from crypto_assets.platform import platform_services, prepare_home
from crypto_assets.settings import SettingsError, autostart, bootstrap_days
from crypto_assets_tests.binance_standin import BinanceStandIn, synthetic_klines
from crypto_assets_tests.processes import free_port, kill_groups, left_in_groups

ROOT = Path(__file__).resolve().parents[1]
DAY_MS = 86_400_000


def test_bootstrap_range_is_the_last_closed_days_from_the_first_trading_day_on() -> None:
    assert bootstrap_range(date(2026, 12, 5), 30, "2017-08-17") == ("2026-11-05", "2026-12-04")
    assert bootstrap_range(date(2026, 12, 5), 1, "2017-08-17") == ("2026-12-04", "2026-12-04")
    assert bootstrap_range(date(2017, 8, 20), 30, "2017-08-17") == ("2017-08-17", "2017-08-19")
    assert bootstrap_range(date(2017, 8, 17), 30, "2017-08-17") is None
    assert bootstrap_range(date(2026, 12, 5), 0, "2017-08-17") is None


def test_autostart_is_local_only_and_settings_name_a_bad_value() -> None:
    assert autostart({"CRYPTO_ASSETS_AUTOSTART": "1"}) is True
    assert autostart({"CRYPTO_ASSETS_AUTOSTART": "1", "CRYPTO_ASSETS_ENV": "prod"}) is False
    assert autostart({}) is False
    with pytest.raises(SettingsError, match="CRYPTO_ASSETS_AUTOSTART='yes'"):
        autostart({"CRYPTO_ASSETS_AUTOSTART": "yes"})
    assert bootstrap_days({}) == 30
    assert bootstrap_days({"CRYPTO_ASSETS_BOOTSTRAP_DAYS": "7"}) == 7
    with pytest.raises(SettingsError, match="CRYPTO_ASSETS_BOOTSTRAP_DAYS='-1'"):
        bootstrap_days({"CRYPTO_ASSETS_BOOTSTRAP_DAYS": "-1"})


@pytest.mark.parametrize("port", ["abc", "0", "70000"])
def test_a_bad_dashboard_port_stops_the_platform_naming_it(
    port: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from crypto_assets.cli import main

    monkeypatch.setenv("DASHBOARD_PORT", port)
    assert main(["platform", "--help"]) == 2
    assert capsys.readouterr().err == (
        f"crypto-assets: DASHBOARD_PORT='{port}': expected a whole number from 1 to 65535.\n"
    )


def test_prod_and_a_plain_stack_start_no_automation_by_themselves() -> None:
    """Loaded as prod would load it (CRYPTO_ASSETS_AUTOSTART=1 ignored), and without the flag."""
    code = (
        "from crypto_assets.definitions import defs;"
        "print(sorted(s.name for s in [*defs.sensors, *defs.schedules]"
        " if s.default_status.value == 'RUNNING'))"
    )
    base = {**os.environ, "PYTHONPATH": str(ROOT), "CRYPTO_ASSETS_AUTOSTART": "1"}
    local = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code], env=base, capture_output=True, text=True
    )
    plain = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code],
        env={**base, "CRYPTO_ASSETS_AUTOSTART": "0"},
        capture_output=True,
        text=True,
    )
    always_on = [
        "analytics_automation_sensor",
        "failure_alerts_sensor",
        "freshness_checks_sensor",
        "prune_run_history_schedule",
    ]
    assert plain.stdout.strip() == str(always_on), plain.stderr
    assert local.stdout.strip() == str(
        sorted(
            [*always_on, "bootstrap_history_sensor", "daily_klines_schedule", "fresh_klines_sensor"]
        )
    ), local.stderr


def test_bootstrap_sensor_requests_one_range_run_once(local_instance: dg.DagsterInstance) -> None:
    with dg.build_sensor_context(instance=local_instance) as context:
        result = bootstrap_history_sensor(context)
    assert len(result.run_requests) == 1
    request = result.run_requests[0]
    utc_today = date(*time.gmtime()[:3])
    first, last = str(utc_today - timedelta(days=30)), str(utc_today - timedelta(days=1))
    assert request.run_key == f"bootstrap-{first}...{last}"
    assert request.tags["dagster/asset_partition_range_start"] == first
    assert request.tags["dagster/asset_partition_range_end"] == last
    assert request.tags["crypto_assets/lane"] == "batch"
    assert result.cursor == f"{first}...{last}"
    with dg.build_sensor_context(instance=local_instance, cursor=result.cursor) as context:
        again = bootstrap_history_sensor(context)
    assert again.run_requests == []
    assert again.skip_reason.skip_message == f"History was bootstrapped: {first}...{last}."


def test_prepare_home_gives_a_fresh_home_its_instance_and_switches_automation_on(
    tmp_path: Path,
) -> None:
    env = prepare_home({"CRYPTO_ASSETS_HOME": str(tmp_path / "data"), "PATH": os.environ["PATH"]})
    dagster_home = tmp_path / "data" / "dagster_home"
    assert env["DAGSTER_HOME"] == str(dagster_home)
    assert env["CRYPTO_ASSETS_AUTOSTART"] == "1"
    assert (dagster_home / "dagster.yaml").read_text() == (
        ROOT / "deploy" / "dagster.local.yaml"
    ).read_text()
    assert (dagster_home / "schedules" / "schedules.db").exists()
    names = [service.name for service in platform_services("127.0.0.1", 3000, 8501)]
    assert names == ["webserver", "daemon", "dashboard", "live"]
    without = platform_services("127.0.0.1", 3000, 8501, live_loader=False)
    assert [service.name for service in without] == ["webserver", "daemon", "dashboard"]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return answer.status == 200
    except OSError:
        return False


def _warehouse_days(database: Path) -> list[tuple[str, int]]:
    try:
        with duckdb.connect(str(database), read_only=True) as connection:
            rows = connection.execute(
                "select cast(cast(open_time as date) as varchar), count(*)"
                " from cryptodb.cryptoschema.btcusdt group by 1 order by 1"
            ).fetchall()
    except (duckdb.Error, OSError):
        return []
    return [(day, count) for day, count in rows]


@pytest.mark.e2e
def start_platform(
    home: Path, ui_port: int, dashboard_port: int, log_path: Path, **settings: str
) -> subprocess.Popen:
    """``crypto-assets platform`` as a service manager starts it: its own session, no terminal,
    a fresh local home (no DAGSTER_HOME), output to ``log_path``."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CRYPTO_ASSETS_HOME": str(home), **settings}
    env.pop("DAGSTER_HOME", None)
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [
                *(sys.executable, "-m", "crypto_assets.cli", "platform"),
                *("--ui-port", str(ui_port), "--dashboard-port", str(dashboard_port)),
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _started_groups(log_path: Path) -> list[int]:
    """The process groups the platform logged as started (webserver, daemon, dashboard, loader)."""
    return [
        int(word.rstrip(","))
        for line in log_path.read_text(errors="replace").splitlines()
        if line.startswith("platform: started")
        for word in line.split()[4::3]
    ]


def test_platform_on_a_fresh_home_loads_history_and_today_then_stops_on_sigterm(
    tmp_path: Path,
) -> None:
    """As a service manager runs it: its own session, no terminal, SIGTERM to it alone."""
    now = int(time.time() * 1000)
    today = now - now % DAY_MS
    klines = {("BTCUSDT", "1m"): synthetic_klines("1m", today - 2 * DAY_MS, today + DAY_MS)}
    home = tmp_path / "data"
    ui_port, dashboard_port = free_port(), free_port()
    with BinanceStandIn(klines) as standin:
        log_path = tmp_path / "platform.log"
        platform = start_platform(
            home,
            ui_port,
            dashboard_port,
            log_path,
            BINANCE_BASE_URL=standin.url,
            BINANCE_ARCHIVE_URL=standin.url,
            BINANCE_STREAM_URL=standin.stream_url,
            CRYPTO_ASSETS_BOOTSTRAP_DAYS="2",
        )
        groups = [platform.pid]
        try:
            deadline = time.monotonic() + 150
            expected_days = [
                time.strftime("%Y-%m-%d", time.gmtime((today - DAY_MS * back) / 1000))
                for back in (2, 1)
            ]
            while True:
                assert platform.poll() is None, log_path.read_text(errors="replace")[-3000:]
                days = _warehouse_days(home / "cryptodb.duckdb")
                loaded = [day for day, count in days if count == 1440]
                if (
                    loaded == expected_days
                    and len(days) == 3
                    and _answers(f"http://127.0.0.1:{ui_port}/server_info")
                    and _answers(f"http://127.0.0.1:{dashboard_port}/_stcore/health")
                ):
                    break
                assert time.monotonic() < deadline, f"not loaded in 150 s: {days}"
                time.sleep(1)
            assert standin.open_streams() == 1  # the live loader's (no page is open)
            groups += _started_groups(log_path)
            assert len(groups) == 5
            stopping = time.monotonic()
            os.kill(platform.pid, signal.SIGTERM)
            assert platform.wait(timeout=20) == 128 + signal.SIGTERM
            left = left_in_groups(groups, stopping + 15, 0.2)
            assert not left, f"left running after SIGTERM: {left}"
            assert time.monotonic() - stopping < 15
        finally:
            # The parts run in sessions of their own: a platform that failed the test is killed
            # with every part it started, not only its own group.
            kill_groups(sorted({*groups, platform.pid, *_started_groups(log_path)}))


def test_platform_killed_outright_takes_its_services_with_it(tmp_path: Path) -> None:
    """SIGKILL to the supervisor alone (the OOM killer, ``kill -9``): it cannot stop anything
    itself, so each service gets SIGTERM from the kernel as its parent dies, and stops its own."""
    home = tmp_path / "data"
    ui_port, dashboard_port = free_port(), free_port()
    log_path = tmp_path / "platform.log"
    platform = start_platform(
        home, ui_port, dashboard_port, log_path, CRYPTO_ASSETS_BOOTSTRAP_DAYS="0"
    )
    groups = [platform.pid]
    try:
        deadline = time.monotonic() + 120
        while not (
            _answers(f"http://127.0.0.1:{ui_port}/server_info")
            and _answers(f"http://127.0.0.1:{dashboard_port}/_stcore/health")
        ):
            assert platform.poll() is None, log_path.read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, "the platform did not answer in 120 s"
            time.sleep(1)
        groups += _started_groups(log_path)
        assert len(groups) == 5
        killed = time.monotonic()
        os.kill(platform.pid, signal.SIGKILL)
        assert platform.wait(timeout=10) == -signal.SIGKILL
        left = left_in_groups(groups[1:], killed + 30, 0.2)
        assert not left, f"left running 30 s after the supervisor was killed: {left}"
        print(f"every service gone {time.monotonic() - killed:.1f} s after the kill")
    finally:
        kill_groups(sorted({*groups, *_started_groups(log_path)}))
