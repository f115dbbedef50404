"""The user's day on the real Dagster processes: dagster-webserver and dagster-daemon.

One stack for the module, as `scripts/local_stack.sh` starts it: the webserver and the daemon on
loopback ports with a temporary DAGSTER_HOME (deploy/dagster.local.yaml), pointed at the Binance
stand-in (synthetic 1m candles for the 44 days before today and today, on the real clock) and at
a webhook receiver for alerts. Everything is driven through the GraphQL API the UI uses:

a. one day of the whole lineage, launched as a run of the ``kline_lineage`` job;
b. a 7-day backfill of the three assets, which their single-run policy makes one run, and a
   33-day one (over 31 days a range run records per-day check results only for failed days);
c. the fresh-data sensor and the daily schedule turned on; a sensor tick launches a run;
d. a day with a corrupted candle: its blocking check fails, and the alert reaches the webhook
   once per failed check;
e. nobody launches analytics: the daemon's analytics_automation_sensor rebuilds the loaded day's
   bars, then the indicators and backtests.

Then headless Chromium renders the asset lineage, the catalog and the asset pages with the checks
and partitions (screenshots land in artifacts/screenshots/). Before all of it, two tests start
`scripts/local_stack.sh` itself: one stops it with Ctrl-C, one without a terminal with SIGTERM.

To keep the module within a few minutes on two cores, everything the user asks for is launched
first (the run queue takes one run at a time), then each test waits for and checks its part;
the fresh-data sensor is stopped once it has proved itself.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

import dagster as dg
import duckdb
import pytest
import requests

from crypto_assets_tests.binance_standin import BinanceStandIn, synthetic_klines
from crypto_assets_tests.browser import CHROMIUM, CHROMIUM_ARGS
from crypto_assets_tests.processes import (
    free_port,
    kill_groups,
    left_in_groups,
    stop_process_groups,
)
from crypto_assets_tests.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
MODULE = "crypto_assets.definitions"
REPOSITORY = "__repository__"
KEY = ("BTCUSDT", "1m")
ASSETS = ("raw_klines", "clean_klines", "snowflake_btcusdt")
CLEAN_CHECKS = (
    "low_at_or_below_open_and_close",
    "high_at_or_above_open_and_close",
    "prices_positive",
    "volumes_non_negative",
    "taker_base_within_volume",
    "taker_quote_within_quote_volume",
    "close_time_matches_interval",
    "open_time_unique_on_grid",
    "complete_day",
)
WAREHOUSE_CHECK = "warehouse_matches_clean_klines"
SENSOR_INTERVAL_SECONDS = 15
DAY_MS = 86_400_000
ROWS_PER_DAY = 1440
TERMINAL_RUN = {"SUCCESS", "FAILURE", "CANCELED"}
TERMINAL_BACKFILL = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}

# The days, relative to the real UTC date when the module starts. The stand-in serves
# today-44 .. today (and tomorrow, which its clock hides until it comes).
TODAY = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)


def _day(offset: int) -> str:
    return (TODAY + timedelta(days=offset)).strftime("%Y-%m-%d")


BAD_DAY = _day(-10)  # d: served with a corrupted candle at 12:00
ONE_DAY = _day(-9)  # a: one run of the kline_lineage job
RANGE_DAYS = [_day(offset) for offset in range(-8, -1)]  # b: today-8 .. today-2, one backfill
LONG_RANGE_DAYS = [_day(offset) for offset in range(-44, -11)]  # b: 33 days, today-44 .. today-12
BAD_OPEN_TIME_MS = int(TODAY.timestamp() * 1000) - 10 * DAY_MS + 12 * 3_600_000
BAD_OPEN_TIME = f"{BAD_DAY}T12:00:00Z"

T = TypeVar("T")


# -- GraphQL --------------------------------------------------------------------------------------


class GraphQL:
    """POSTs to /graphql; remembers the last answer so a timeout can say what Dagster said."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.last: str = "(none yet)"

    def __call__(self, query: str, **variables: Any) -> dict[str, Any]:
        response = requests.post(
            self.url, json={"query": query, "variables": variables}, timeout=60
        )
        self.last = response.text[:3000]
        response.raise_for_status()
        body = response.json()
        assert not body.get("errors"), f"GraphQL errors: {body['errors']}"
        return body["data"]


def wait_until(
    what: str, probe: Callable[[], T | None], timeout: float, gql: GraphQL, every: float = 2.0
) -> T:
    """``probe()`` once it is truthy; fails after ``timeout`` s with Dagster's last answer."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{what}: not within {timeout:.0f} s; last GraphQL answer: {gql.last}"
            )
        time.sleep(every)


ERROR_FIELDS = "__typename ... on Error { message } ... on PythonError { stack }"

RUN_QUERY = """
query ($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { runId status jobName tags { key value } }
  }
}
"""

CHECK_EXECUTIONS = """
query ($asset: AssetKeyInput!, $check: String!) {
  assetCheckExecutions(assetKey: $asset, checkName: $check, limit: 100) {
    runId status partition
    evaluation {
      severity
      metadataEntries { label ... on JsonMetadataEntry { jsonString } }
    }
  }
}
"""


# -- the stack ------------------------------------------------------------------------------------


@dataclass
class Stack:
    url: str
    gql: GraphQL
    location: str
    home: Path
    standin: BinanceStandIn
    receiver: WebhookReceiver
    logs: dict[str, Path]
    candles: list[list[Any]]
    launched: dict[str, Any] = field(default_factory=dict)

    @property
    def warehouse(self) -> Path:
        return self.home / "cryptodb.duckdb"

    def selector(self, **name: str) -> dict[str, str]:
        return {"repositoryLocationName": self.location, "repositoryName": REPOSITORY, **name}

    def log_tails(self) -> str:
        return "\n".join(
            f"--- {name} ({path}):\n"
            + "\n".join(path.read_text(errors="replace").splitlines()[-25:])
            for name, path in self.logs.items()
            if path.exists()
        )

    def run(self, run_id: str) -> dict[str, Any]:
        answer = self.gql(RUN_QUERY, runId=run_id)["runOrError"]
        assert answer["__typename"] == "Run", answer
        return answer

    def wait_for_run(self, run_id: str, timeout: float) -> dict[str, Any]:
        def finished() -> dict[str, Any] | None:
            run = self.run(run_id)
            return run if run["status"] in TERMINAL_RUN else None

        return wait_until(f"run {run_id} to finish", finished, timeout, self.gql)

    def check_executions(self, asset: str, check: str, run_id: str) -> list[dict[str, Any]]:
        executions = self.gql(CHECK_EXECUTIONS, asset={"path": [asset]}, check=check)
        return [row for row in executions["assetCheckExecutions"] if row["runId"] == run_id]

    def rows_per_day(self) -> dict[str, int]:
        """The warehouse's rows per UTC day, read-only; retries while a run holds the file."""
        deadline = time.monotonic() + 60
        while True:
            try:
                with duckdb.connect(str(self.warehouse), read_only=True) as connection:
                    rows = connection.execute(
                        "SELECT strftime(CAST(open_time AS DATE), '%Y-%m-%d'), count(*)"
                        " FROM cryptodb.cryptoschema.btcusdt GROUP BY 1"
                    ).fetchall()
                return dict(rows)
            except duckdb.IOException as exc:  # "Could not set lock on file": a run is writing
                if time.monotonic() > deadline:
                    raise AssertionError(f"{self.warehouse} stayed locked: {exc}") from exc
                time.sleep(1)


def local_env() -> dict[str, str]:
    """This environment in the local flavour, with no way to alert anybody real or call Binance."""
    env = {**os.environ, "CRYPTO_ASSETS_ENV": "local", "BINANCE_BASE_URL": "http://127.0.0.1:9"}
    for name in (
        "DAGSTER_HOME",
        "CRYPTO_ASSETS_ALERT_WEBHOOK_URL",
        "SLACK_BOT_TOKEN",
        "CRYPTO_ASSETS_SLACK_CHANNEL",
        "BINANCE_API_KEY",
        "BINANCE_API_SECRET",
    ):
        env.pop(name, None)
    return env


def _wait_for_stack(stack: Stack, processes: dict[str, subprocess.Popen]) -> None:
    """The webserver answers, the code location is loaded, and the daemons are heartbeating."""

    def alive() -> None:
        for name, process in processes.items():
            if process.poll() is not None:
                raise AssertionError(
                    f"{name} exited with {process.returncode} while starting\n{stack.log_tails()}"
                )

    def location_loaded() -> str | None:
        alive()
        try:
            data = stack.gql(
                """{ workspaceOrError { __typename ... on Workspace { locationEntries {
                       name loadStatus
                       locationOrLoadError { __typename ... on PythonError { message } } } } } }"""
            )
        except requests.RequestException:
            return None
        entries = data["workspaceOrError"].get("locationEntries") or []
        for entry in entries:
            error = entry["locationOrLoadError"] or {}
            assert error.get("__typename") != "PythonError", f"code location failed: {error}"
            if entry["loadStatus"] == "LOADED" and error.get("__typename") == "RepositoryLocation":
                return entry["name"]
        return None

    stack.location = wait_until("the code location to load", location_loaded, 150, stack.gql)

    needed = {"SCHEDULER", "SENSOR", "BACKFILL", "QUEUED_RUN_COORDINATOR"}

    def daemons_healthy() -> bool:
        alive()
        statuses = stack.gql(
            "{ instance { daemonHealth { allDaemonStatuses { daemonType healthy } } } }"
        )["instance"]["daemonHealth"]["allDaemonStatuses"]
        return needed <= {status["daemonType"] for status in statuses if status["healthy"]}

    wait_until("the daemons to heartbeat", daemons_healthy, 120, stack.gql)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    work = tmp_path_factory.mktemp("e2e")
    home = work / "data"
    dagster_home = work / "dagster_home"
    dagster_home.mkdir()
    shutil.copy(ROOT / "deploy" / "dagster.local.yaml", dagster_home / "dagster.yaml")
    # As local_stack.sh does: the databases exist before two processes could race to create them.
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DAGSTER_HOME", str(dagster_home))
        with dg.DagsterInstance.get() as instance:
            instance.get_runs(limit=1)
            instance.all_instigator_state()
            instance.fetch_materializations(dg.AssetKey("snowflake_btcusdt"), limit=1)
    start = int(TODAY.timestamp() * 1000) - 44 * DAY_MS
    klines = {KEY: synthetic_klines("1m", start, start + 46 * DAY_MS)}
    port = free_port()
    processes: dict[str, subprocess.Popen] = {}
    with BinanceStandIn(klines) as standin, WebhookReceiver() as receiver:
        env = {
            **local_env(),
            "DAGSTER_HOME": str(dagster_home),
            "CRYPTO_ASSETS_HOME": str(home),
            "BINANCE_BASE_URL": standin.url,
            "CRYPTO_ASSETS_ALERT_WEBHOOK_URL": receiver.url,
            "CRYPTO_ASSETS_SENSOR_INTERVAL_SECONDS": str(SENSOR_INTERVAL_SECONDS),
        }
        commands = {
            "dagster-webserver": [
                str(BIN / "dagster-webserver"),
                *("-h", "127.0.0.1", "-p", str(port), "-m", MODULE),
            ],
            "dagster-daemon": [str(BIN / "dagster-daemon"), "run", "-m", MODULE],
        }
        logs = {name: work / f"{name}.log" for name in commands}
        url = f"http://127.0.0.1:{port}"
        stack = Stack(
            url, GraphQL(f"{url}/graphql"), "", home, standin, receiver, logs, klines[KEY]
        )
        try:
            for name, command in commands.items():
                with logs[name].open("wb") as log:
                    processes[name] = subprocess.Popen(
                        command,
                        cwd=ROOT,
                        env=env,
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
            _wait_for_stack(stack, processes)
            yield stack
        finally:
            survivors = stop_process_groups(list(processes.values()))
            assert not survivors, f"processes left after teardown: {survivors}"
    shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module")
def day(stack: Stack) -> Stack:
    """The user's day, launched up front: a, b, d, then c's sensor and schedule turned on."""
    # d's corrupted candle: high below low, which breaks both the low and the high rule.
    row = next(candle for candle in stack.candles if candle[0] == BAD_OPEN_TIME_MS)
    corrupted = list(row)
    corrupted[2] = f"{float(row[3]) - 5:.8f}"
    stack.standin.replace_kline("BTCUSDT", "1m", BAD_OPEN_TIME_MS, corrupted)

    stack.launched["one_day_run"] = launch_day(stack, ONE_DAY)
    stack.launched["bad_day_run"] = launch_day(stack, BAD_DAY)
    stack.launched["backfill"] = launch_backfill(stack, RANGE_DAYS, "e2e range")
    stack.launched["long_backfill"] = launch_backfill(stack, LONG_RANGE_DAYS, "e2e long range")
    answer = stack.gql(
        f"""mutation ($selector: SensorSelector!) {{
              startSensor(sensorSelector: $selector) {{
                ... on Sensor {{ sensorState {{ status }} }} {ERROR_FIELDS} }} }}""",
        selector=stack.selector(sensorName="fresh_klines_sensor"),
    )["startSensor"]
    assert answer["__typename"] == "Sensor", answer
    assert answer["sensorState"]["status"] == "RUNNING", answer
    answer = stack.gql(
        f"""mutation ($selector: ScheduleSelector!) {{
              startSchedule(scheduleSelector: $selector) {{
                ... on ScheduleStateResult {{ scheduleState {{ status }} }} {ERROR_FIELDS} }} }}""",
        selector=stack.selector(scheduleName="daily_klines_schedule"),
    )["startSchedule"]
    assert answer["__typename"] == "ScheduleStateResult", answer
    return stack


def launch_backfill(stack: Stack, days: list[str], title: str) -> str:
    """What the UI's backfill dialog does for the three assets over ``days``."""
    answer = stack.gql(
        f"""mutation ($params: LaunchBackfillParams!) {{
              launchPartitionBackfill(backfillParams: $params) {{
                ... on LaunchBackfillSuccess {{ backfillId }} {ERROR_FIELDS} }} }}""",
        params={
            "assetSelection": [{"path": [asset]} for asset in ASSETS],
            "partitionNames": days,
            "title": title,
        },
    )["launchPartitionBackfill"]
    assert answer["__typename"] == "LaunchBackfillSuccess", answer
    return answer["backfillId"]


def launch_day(stack: Stack, day: str) -> str:
    """What the UI's Materialize button does for one partition of the job."""
    answer = stack.gql(
        f"""mutation ($params: ExecutionParams!) {{
              launchRun(executionParams: $params) {{
                ... on LaunchRunSuccess {{ run {{ runId }} }} {ERROR_FIELDS} }} }}""",
        params={
            "selector": stack.selector(jobName="kline_lineage"),
            "executionMetadata": {"tags": [{"key": "dagster/partition", "value": day}]},
        },
    )["launchRun"]
    assert answer["__typename"] == "LaunchRunSuccess", answer
    return answer["run"]["runId"]


# -- scripts/local_stack.sh -----------------------------------------------------------------------


def start_local_stack(tmp_path: Path) -> tuple[subprocess.Popen, int, Path]:
    """scripts/local_stack.sh in its own session (it leads its group, as in a terminal), with
    its output in a log file; returns the process, the webserver's port and the log."""
    port = free_port()
    log = tmp_path / "local_stack.log"
    env = {**local_env(), "PORT": str(port), "CRYPTO_ASSETS_HOME": str(tmp_path / "data")}
    with log.open("wb") as out:
        script = subprocess.Popen(
            [str(ROOT / "scripts" / "local_stack.sh")],
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return script, port, log


def started_pids(log: Path) -> list[int] | None:
    """The webserver's and the daemon's pids, once the script's log says it started them."""
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("local_stack: webserver pid"):
            words = line.replace(",", "").split()
            return [int(words[3]), int(words[6])]
    return None


def test_local_stack_script_starts_both_and_ctrl_c_stops_them(tmp_path: Path) -> None:
    """Runs first, before the module's stack: the script a user starts, then Ctrl-C."""
    script, port, log = start_local_stack(tmp_path)
    groups = [script.pid]
    gql = GraphQL(f"http://127.0.0.1:{port}/graphql")
    try:

        def started() -> list[int] | None:
            assert script.poll() is None, f"local_stack.sh exited early:\n{log.read_text()}"
            return started_pids(log)

        groups += wait_until("local_stack.sh to start both processes", started, 30, gql, 0.5)

        def daemon_heartbeat() -> bool:
            assert script.poll() is None, f"local_stack.sh exited early:\n{log.read_text()}"
            try:
                answer = gql(
                    "{ instance { daemonHealth { allDaemonStatuses { required healthy } } } }"
                )
            except requests.RequestException:
                return False
            statuses = answer["instance"]["daemonHealth"]["allDaemonStatuses"]
            required = [status for status in statuses if status["required"]]
            return bool(required) and all(status["healthy"] for status in required)

        wait_until("the script's webserver and daemon to be up", daemon_heartbeat, 150, gql)
        assert (tmp_path / "data" / "dagster_home" / "dagster.yaml").read_text() == (
            ROOT / "deploy" / "dagster.local.yaml"
        ).read_text()

        os.killpg(script.pid, signal.SIGINT)  # Ctrl-C reaches the terminal's foreground group
        assert script.wait(timeout=60) == 130, log.read_text()
        left = left_in_groups(groups, time.monotonic() + 10, 0.5)
        assert not left, f"left running after Ctrl-C: {left}\n{log.read_text()}"
    finally:
        kill_groups(groups)
        with contextlib.suppress(subprocess.TimeoutExpired):
            script.wait(timeout=10)


def test_local_stack_without_a_terminal_stops_on_sigterm_within_15_seconds(tmp_path: Path) -> None:
    """As a service manager runs it: its own session, no terminal, SIGTERM to the script only."""
    script, port, log = start_local_stack(tmp_path)
    groups = [script.pid]
    gql = GraphQL(f"http://127.0.0.1:{port}/graphql")
    try:

        def webserver_answers() -> list[int] | None:
            assert script.poll() is None, f"local_stack.sh exited early:\n{log.read_text()}"
            pids = started_pids(log)
            try:
                gql("{ version }")
            except requests.RequestException:
                return None
            return pids

        groups += wait_until("the script's webserver to answer", webserver_answers, 150, gql)
        stopping = time.monotonic()
        os.kill(script.pid, signal.SIGTERM)
        assert script.wait(timeout=30) == 143, log.read_text()
        left = left_in_groups(groups, stopping + 15, 0.2)
        assert not left, f"left running after SIGTERM: {left}\n{log.read_text()}"
        assert time.monotonic() - stopping < 15
    finally:
        kill_groups(groups)
        with contextlib.suppress(subprocess.TimeoutExpired):
            script.wait(timeout=10)


# -- a. one day -----------------------------------------------------------------------------------


def test_one_day_of_the_whole_lineage(day: Stack) -> None:
    run_id = day.launched["one_day_run"]
    run = day.wait_for_run(run_id, timeout=150)
    assert run["status"] == "SUCCESS", f"{run}\n{day.log_tails()}"
    assert {"key": "dagster/partition", "value": ONE_DAY} in run["tags"]
    for check in CLEAN_CHECKS:
        statuses = [row["status"] for row in day.check_executions("clean_klines", check, run_id)]
        assert statuses == ["SUCCEEDED"], (check, day.gql.last)
    statuses = [
        row["status"] for row in day.check_executions("snowflake_btcusdt", WAREHOUSE_CHECK, run_id)
    ]
    assert statuses == ["SUCCEEDED"], day.gql.last
    assert day.rows_per_day().get(ONE_DAY) == ROWS_PER_DAY


# -- b. a 7-day backfill --------------------------------------------------------------------------


def finished_backfill(day: Stack, backfill_id: str) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        backfill = day.gql(
            """query ($id: String!) { partitionBackfillOrError(backfillId: $id) {
                 __typename ... on PartitionBackfill {
                   status numPartitions error { message }
                   runs { runId status tags { key value } } } } }""",
            id=backfill_id,
        )["partitionBackfillOrError"]
        assert backfill["__typename"] == "PartitionBackfill", backfill
        return backfill if backfill["status"] in TERMINAL_BACKFILL else None

    # The backfill daemon looks at requested backfills every 30 s: submit, then see it done.
    return wait_until(f"backfill {backfill_id} to complete", finished, 300, day.gql)


def one_successful_range_run(day: Stack, backfill_id: str, days: list[str]) -> dict:
    """The backfill's only run (BackfillPolicy.single_run() on every asset), over ``days``."""
    backfill = finished_backfill(day, backfill_id)
    assert backfill["status"] in {"COMPLETED", "COMPLETED_SUCCESS"}, backfill
    assert len(backfill["runs"]) == 1, backfill
    run = backfill["runs"][0]
    assert run["status"] == "SUCCESS", run
    tags = {tag["key"]: tag["value"] for tag in run["tags"]}
    assert tags["dagster/asset_partition_range_start"] == days[0], tags
    assert tags["dagster/asset_partition_range_end"] == days[-1], tags
    return run


def assert_check_statuses(day: Stack, run_id: str, expected: dict[str | None, str]) -> None:
    """Every lineage check's executions in the run, by partition (None: the range-wide one)."""
    for asset, check in [
        *(("clean_klines", c) for c in CLEAN_CHECKS),
        ("snowflake_btcusdt", WAREHOUSE_CHECK),
    ]:
        executions = day.check_executions(asset, check, run_id)
        by_partition = {row["partition"]: row["status"] for row in executions}
        assert by_partition == expected, (check, by_partition)


def test_seven_day_backfill_is_one_run(day: Stack) -> None:
    run = one_successful_range_run(day, day.launched["backfill"], RANGE_DAYS)
    # A range run records each check once for the whole range (no partition) and once per day,
    # so the UI shows every backfilled day's own result.
    assert_check_statuses(
        day, run["runId"], {None: "SUCCEEDED", **dict.fromkeys(RANGE_DAYS, "SUCCEEDED")}
    )

    rows = day.rows_per_day()
    expected = dict.fromkeys([ONE_DAY, *RANGE_DAYS], ROWS_PER_DAY)
    assert {d: n for d, n in rows.items() if d in expected} == expected, rows
    assert sum(rows[d] for d in expected) == 8 * ROWS_PER_DAY
    # Anything else is the long backfill's or today's, from the fresh-data sensor (c); never
    # the corrupted day (d).
    assert set(rows) - set(expected) - set(LONG_RANGE_DAYS) <= {_day(0)}, rows


def test_a_33_day_backfill_is_one_run_recording_only_failed_days(day: Stack) -> None:
    run = one_successful_range_run(day, day.launched["long_backfill"], LONG_RANGE_DAYS)
    # Over 31 days a range run records a day's own result only when it failed (each costs
    # about 10 ms); every day here passed, so the UI shows them as skipped under the run's
    # one range-wide success.
    assert_check_statuses(
        day, run["runId"], {None: "SUCCEEDED", **dict.fromkeys(LONG_RANGE_DAYS, "SKIPPED")}
    )
    rows = day.rows_per_day()
    assert [rows.get(d) for d in LONG_RANGE_DAYS] == [ROWS_PER_DAY] * 33, rows


# -- c. the fresh-data sensor and the daily schedule ----------------------------------------------


def test_sensor_tick_launches_a_run_and_schedule_waits_for_0010_utc(day: Stack) -> None:
    def sensor_run() -> dict[str, Any] | None:
        runs = day.gql(
            """{ runsOrError(filter: {tags: [{key: "crypto_assets/trigger",
                                               value: "fresh_klines_sensor"}]}) {
                   __typename ... on Runs { results { runId status tags { key value } } } } }"""
        )["runsOrError"]["results"]
        failed = [run for run in runs if run["status"] in {"FAILURE", "CANCELED"}]
        assert not failed, f"{failed}\n{day.log_tails()}"
        return next((run for run in runs if run["status"] == "SUCCESS"), None)

    # One tick every 15 s launches a refresh of today; it queues behind the runs launched first.
    run = wait_until("a fresh_klines_sensor run to succeed", sensor_run, 240, day.gql)
    assert {"key": "dagster/partition", "value": _day(0)} in run["tags"], run

    sensor = day.gql(
        """query ($selector: SensorSelector!) { sensorOrError(sensorSelector: $selector) {
             __typename ... on Sensor { jobOriginId minIntervalSeconds
               sensorState { status selectorId ticks(limit: 50) { status runIds } } } } }""",
        selector=day.selector(sensorName="fresh_klines_sensor"),
    )["sensorOrError"]
    assert sensor["sensorState"]["status"] == "RUNNING", sensor
    assert sensor["minIntervalSeconds"] == SENSOR_INTERVAL_SECONDS, sensor
    ticks = sensor["sensorState"]["ticks"]
    assert any(tick["status"] == "SUCCESS" and run["runId"] in tick["runIds"] for tick in ticks), (
        ticks
    )
    # Every new candle would queue one more refresh of today; it has proved itself, so stop it.
    stopped = day.gql(
        f"""mutation ($origin: String!, $selectorId: String!) {{
              stopSensor(jobOriginId: $origin, jobSelectorId: $selectorId) {{
                ... on StopSensorMutationResult {{ instigationState {{ status }} }}
                {ERROR_FIELDS} }} }}""",
        origin=sensor["jobOriginId"],
        selectorId=sensor["sensorState"]["selectorId"],
    )["stopSensor"]
    assert stopped["instigationState"]["status"] == "STOPPED", stopped

    # The schedule is on, and its next tick is the coming 00:10 UTC. The daemon does not tick it
    # during this test (unless the test happens to run across 00:10 UTC).
    schedule = day.gql(
        """query ($selector: ScheduleSelector!) { scheduleOrError(scheduleSelector: $selector) {
             __typename ... on Schedule { cronSchedule executionTimezone
               scheduleState { status nextTick { timestamp } }
               futureTicks(limit: 1) { results { timestamp } } } } }""",
        selector=day.selector(scheduleName="daily_klines_schedule"),
    )["scheduleOrError"]
    assert schedule["__typename"] == "Schedule", schedule
    assert schedule["scheduleState"]["status"] == "RUNNING", schedule
    assert (schedule["cronSchedule"], schedule["executionTimezone"]) == ("10 0 * * *", "UTC")
    now = datetime.now(timezone.utc)
    next_0010 = now.replace(hour=0, minute=10, second=0, microsecond=0)
    if next_0010 <= now:
        next_0010 += timedelta(days=1)
    assert schedule["scheduleState"]["nextTick"]["timestamp"] == next_0010.timestamp(), schedule
    assert schedule["futureTicks"]["results"][0]["timestamp"] == next_0010.timestamp(), schedule


# -- d. a corrupted day: failed check, one alert per failed check ---------------------------------


def _check_alerts(stack: Stack, run_id: str) -> list[dict[str, Any]]:
    return [
        body
        for body in list(stack.receiver.bodies)
        if body["kind"] == "check_failed" and body["run_id"] == run_id
    ]


def test_corrupted_day_fails_its_check_and_alerts_once(day: Stack) -> None:
    run_id = day.launched["bad_day_run"]
    run = day.wait_for_run(run_id, timeout=150)
    assert run["status"] == "FAILURE", run  # the blocking check stops the day before the warehouse

    failed = {}
    for check in CLEAN_CHECKS:
        executions = day.check_executions("clean_klines", check, run_id)
        assert len(executions) == 1, (check, day.gql.last)
        if executions[0]["status"] == "FAILED":
            failed[check] = executions[0]
    assert "low_at_or_below_open_and_close" in failed, day.gql.last
    evaluation = failed["low_at_or_below_open_and_close"]["evaluation"]
    assert evaluation["severity"] == "ERROR", evaluation
    metadata = {entry["label"]: entry.get("jsonString") for entry in evaluation["metadataEntries"]}
    assert BAD_OPEN_TIME in metadata["offending_open_times"], metadata
    assert BAD_DAY not in day.rows_per_day()

    # failure_alerts_sensor (on by default) ticks every 30 s.
    wait_until(
        "an alert for every failed check at the webhook",
        lambda: {body["check"] for body in _check_alerts(day, run_id)} >= set(failed),
        100,
        day.gql,
    )
    alerts = {body["check"]: body for body in _check_alerts(day, run_id)}
    alert = alerts["low_at_or_below_open_and_close"]
    assert alert["asset"] == "clean_klines", alert
    assert alert["partition"] == BAD_DAY, alert
    assert alert["severity"] == "ERROR", alert
    assert BAD_OPEN_TIME in alert["offending_open_times"], alert
    assert set(alerts) == set(failed), (alerts, failed)
    day.launched["alerted_at"] = time.time()


def test_alerts_are_not_repeated_on_the_next_tick(day: Stack) -> None:
    run_id = day.launched["bad_day_run"]
    alerted_at = day.launched.get("alerted_at")
    assert alerted_at, "the alert test did not get as far as the first alert"

    def tick_after_alert() -> bool:
        sensor = day.gql(
            """query ($selector: SensorSelector!) { sensorOrError(sensorSelector: $selector) {
                 __typename ... on Sensor { sensorState { ticks(limit: 5) {
                   status timestamp endTimestamp skipReason } } } } }""",
            selector=day.selector(sensorName="failure_alerts_sensor"),
        )["sensorOrError"]
        return any(
            tick["timestamp"] > alerted_at and tick["status"] in {"SKIPPED", "SUCCESS"}
            for tick in sensor["sensorState"]["ticks"]
        )

    wait_until("a further failure_alerts_sensor tick", tick_after_alert, 90, day.gql)
    checks = [body["check"] for body in _check_alerts(day, run_id)]
    assert sorted(checks) == sorted(set(checks)), f"an alert was repeated: {checks}"
    run_alerts = [
        body
        for body in day.receiver.bodies
        if body["kind"] == "run_failed" and body["run_id"] == run_id
    ]
    assert len(run_alerts) == 1, run_alerts
    keys = [(b["kind"], b["check"], b["partition"], b["run_id"]) for b in day.receiver.bodies]
    assert len(keys) == len(set(keys)), f"repeated alerts: {keys}"


# -- e. the analytics, refreshed by the daemon -----------------------------------------------------


def test_a_loaded_day_refreshes_the_analytics_without_a_person(day: Stack) -> None:
    """Nobody launches analytics here: the daemon's analytics_automation_sensor sees the day's
    warehouse load and rebuilds that day's bars, then the indicators and backtests."""
    run = day.wait_for_run(day.launched["one_day_run"], timeout=150)
    assert run["status"] == "SUCCESS", run

    def analytics_of_the_day() -> tuple[Any, ...] | None:
        try:
            with duckdb.connect(str(day.warehouse), read_only=True) as connection:
                return connection.execute(
                    "SELECT b.candle_count, b.close, i.close, i.obv,"
                    " (SELECT count(*) FROM cryptodb.cryptoschema.btcusdt_backtests)"
                    " FROM cryptodb.cryptoschema.btcusdt_1d b"
                    " JOIN cryptodb.cryptoschema.btcusdt_indicators_1d i USING (open_time)"
                    f" WHERE b.open_time = '{ONE_DAY}'"
                ).fetchone()
        except duckdb.Error:  # not created yet, or a run holds the file
            return None

    candle_count, bar_close, indicator_close, obv, backtests = wait_until(
        f"the analytics of {ONE_DAY}", analytics_of_the_day, 300, day.gql, every=3
    )
    last_open_ms = int(TODAY.timestamp() * 1000) - 8 * DAY_MS - 60_000  # ONE_DAY's 23:59
    last_candle = next(candle for candle in day.candles if candle[0] == last_open_ms)
    assert candle_count == ROWS_PER_DAY
    assert bar_close == indicator_close == float(last_candle[4])
    assert obv is not None and backtests > 0
    automated = day.gql(
        """{ runsOrError(filter: {tags: [{key: "dagster/sensor_name",
                                          value: "analytics_automation_sensor"}]}) {
               __typename ... on Runs { results { runId status } } } }"""
    )["runsOrError"]["results"]
    assert automated and all(run["status"] != "FAILURE" for run in automated), automated


# -- the UI in a real browser ---------------------------------------------------------------------


def _chromium(url: str, work: Path, screenshot: Path) -> str:
    """The DOM headless Chromium renders for ``url``, and a screenshot of the same moment.

    The UI is a React app that loads its data over GraphQL after the page: the virtual time
    budget lets it settle (timers run ahead, network waits count as no time).
    """
    command = [
        CHROMIUM,
        *CHROMIUM_ARGS,
        "--disable-dev-shm-usage",
        f"--user-data-dir={work / 'profile'}",
        "--virtual-time-budget=20000",
        "--window-size=1600,1000",
        f"--screenshot={screenshot}",
        "--dump-dom",
        url,
    ]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=120, cwd=work, check=False
    )
    assert result.returncode == 0, f"chromium failed on {url}: {result.stderr[-2000:]}"
    return result.stdout


UI_PAGES = {
    # screenshot name: (path, names the rendered page must hold)
    "asset-lineage": ("/locations/{repository}@{location}/asset-groups/klines", ASSETS),
    "asset-catalog": ("/assets", ASSETS),
    "clean_klines-checks": ("/assets/clean_klines?view=checks", CLEAN_CHECKS),
    "snowflake_btcusdt-checks": (
        "/assets/snowflake_btcusdt?view=checks",
        (WAREHOUSE_CHECK, "freshness_check"),
    ),
    "snowflake_btcusdt-partitions": (
        "/assets/snowflake_btcusdt?view=partitions",
        ("snowflake_btcusdt", ONE_DAY, *RANGE_DAYS),
    ),
}


@pytest.fixture(scope="module")
def ui(day: Stack) -> Stack:
    # The UI greets a first visit on 127.0.0.1 with a "Join the Dagster community" dialog over
    # the page; this is what its Skip button does.
    assert day.gql("mutation { setNuxSeen }")["setNuxSeen"] is True
    return day


@pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is absent (CI installs Debian's chromium)"
)
@pytest.mark.parametrize("page", list(UI_PAGES))
def test_ui_renders_assets_and_checks(ui: Stack, page: str, tmp_path: Path) -> None:
    path, names = UI_PAGES[page]
    url = ui.url + path.format(repository=REPOSITORY, location=ui.location)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    screenshot = SCREENSHOTS / f"{page}.png"
    screenshot.unlink(missing_ok=True)
    dom = _chromium(url, tmp_path, screenshot)
    print(f"screenshot: {screenshot} ({url})")
    missing = [name for name in names if name not in dom]
    assert not missing, f"{url} rendered without {missing}; page text: {_text(dom)[-3000:]}"
    assert screenshot.exists() and screenshot.stat().st_size > 20_000, screenshot
    if page == "snowflake_btcusdt-partitions":
        materialized = re.search(r"Materialized \((\d+)\)", dom)
        assert materialized and int(materialized[1]) >= 8, _text(dom)[-3000:]


def _text(dom: str) -> str:
    body = dom[dom.find("<body") :]
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", body, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body))
