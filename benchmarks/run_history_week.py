"""Benchmark: DAGSTER_HOME's size and run count after the fresh-data sensor ran for N days.

The sensor launches a run for every closed 1m candle (1,440 a day). This drives the real
`fresh_klines_sensor` tick by tick in accelerated time (a simulated clock shared by the sensor's
Binance stand-in), against a persistent SQLite instance made from deploy/dagster.local.yaml:

  1. two real refresh runs, `dagster job execute -m crypto_assets.definitions -j kline_lineage`,
     as the daemon launches them: the second one's footprint on DAGSTER_HOME is the per-run figure;
  2. `--replay` runs are recorded with that real run's events and captured logs, and their
     measured growth checks the per-run figure;
  3. every run the sensor requests in the simulated days is recorded in the instance with the
     sensor's tags, the real run's events (in one batch, as a run worker sends them) and its
     captured logs; every `--failure-every`-th one failed, and on day `--failing-day` every one
     failed (a notebook holding the DuckDB file). Every sensor tick is stored, and purged as
     dagster.yaml's retention says; an analytics-sensor run follows every hour's refreshes and a
     `prune_run_history` run is recorded each hour, both with the real run's events (more than
     theirs). The `prune_run_history` logic runs at half past every simulated hour, as its
     schedule does.

Prints, per simulated day, the runs kept, how many still have their logs, and DAGSTER_HOME's size
on disk, every file counted (SQLite WAL files included); against the runs ever made.

    .venv/bin/python benchmarks/run_history_week.py --days 7
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg

# Storing ticks as the daemon does: the tick records have no public constructor.
from dagster._core.scheduler.instigation import InstigatorType, TickData, TickStatus

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the stand-in lives in the test package, which is not installed

from crypto_assets.analytics.definitions import analytics_automation_sensor  # noqa: E402
from crypto_assets.automation.housekeeping import (  # noqa: E402
    KEEP_FAILED_DAYS,
    KEEP_FAILED_LOGS_DAYS,
    KEEP_REFRESH_HOURS,
    KEEP_REFRESH_LOGS_HOURS,
    KEEP_RUN_LOGS_DAYS,
    PRUNE_JOB_NAME,
    prune_run_history,
)
from crypto_assets.automation.sensors import fresh_klines_sensor  # noqa: E402
from crypto_assets.klines.resources import BinanceResource  # noqa: E402
from crypto_assets.storage.run_history import LOGS_PRUNED_TAG  # noqa: E402
from crypto_assets_tests.binance_standin import BinanceStandIn, synthetic_klines  # noqa: E402

BIN = Path(sys.executable).parent
SUCCESS, FAILURE = dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE
DAY_MS = 86_400_000
MINUTE_MS = 60_000
REAL_RUN_DAY = "2024-03-01"
"""The day of the two real refresh runs, a closed one (a future day is no partition)."""
BEFORE_ANY_RUN = datetime(1970, 1, 1, tzinfo=timezone.utc)


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def logs_bytes(dagster_home: Path) -> int:
    """What runs' logs take: the event log's database and the captured output."""
    event_log = dagster_home / "history" / "event_log.db"
    wal = dagster_home / "history" / "event_log.db-wal"
    files = [path for path in (event_log, wal) if path.exists()]
    return sum(path.stat().st_size for path in files) + folder_bytes(dagster_home / "storage")


def wal_bytes(dagster_home: Path) -> int:
    return sum(path.stat().st_size for path in dagster_home.rglob("*-wal"))


def request_day(now_ms: int) -> str:
    return datetime.fromtimestamp(now_ms / 1000, timezone.utc).strftime("%Y-%m-%d")


TICK_RETENTION_DAYS = {TickStatus.SKIPPED: 1, TickStatus.SUCCESS: 7, TickStatus.FAILURE: 30}
"""deploy/dagster.local.yaml's sensor tick retention, which the daemon applies."""


class TickRecorder:
    """The fresh-data sensor's ticks as the daemon stores them: one a minute, a success when it
    requested runs, a skip otherwise; purged by simulated age as the retention settings say."""

    def __init__(self, instance: dg.DagsterInstance) -> None:
        self.instance = instance
        self.origin_id, self.selector_id = "fresh_klines_sensor_origin", "fresh_klines_sensor"

    def record(self, now_ms: int, run_ids: list[str]) -> None:
        self.instance.create_tick(
            TickData(
                instigator_origin_id=self.origin_id,
                instigator_name="fresh_klines_sensor",
                instigator_type=InstigatorType.SENSOR,
                status=TickStatus.SUCCESS if run_ids else TickStatus.SKIPPED,
                timestamp=now_ms / 1000,
                run_ids=run_ids,
                selector_id=self.selector_id,
                skip_reason=None if run_ids else "no newly closed candle",
            )
        )

    def purge(self, now_ms: int) -> None:
        for status, days in TICK_RETENTION_DAYS.items():
            self.instance.purge_ticks(
                self.origin_id, self.selector_id, now_ms / 1000 - days * 86_400, [status]
            )

    def stored(self) -> int:
        return len(self.instance.get_ticks(self.origin_id, self.selector_id, limit=1_000_000))


def real_refresh_run(dagster_home: Path, data: Path, standin_url: str, day: str) -> None:
    completed = subprocess.run(
        [
            str(BIN / "dagster"),
            "job",
            "execute",
            "-m",
            "crypto_assets.definitions",
            "-j",
            "kline_lineage",
            "--tags",
            f'{{"dagster/partition": "{day}", "crypto_assets/trigger": "fresh_klines_sensor"}}',
        ],
        env={
            **os.environ,
            "DAGSTER_HOME": str(dagster_home),
            "CRYPTO_ASSETS_HOME": str(data),
            "BINANCE_BASE_URL": standin_url,
        },
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    if completed.returncode != 0:
        sys.exit(f"the real refresh run failed:\n{completed.stderr[-3000:]}")


def real_cutoff(
    real_times: list[tuple[int, datetime]], now_ms: int, hours: float
) -> datetime | None:
    """The real time standing for ``hours`` before the simulated ``now_ms``; None before any run."""
    cutoff_ms = now_ms - int(hours * 3_600_000)
    older = [real for simulated, real in real_times if simulated < cutoff_ms]
    return older[-1] + timedelta(microseconds=1) if older else None


def record_run(
    instance: dg.DagsterInstance,
    template: list,
    template_logs: Path,
    tags: dict[str, str],
    status: dg.DagsterRunStatus,
    job_name: str = "kline_lineage",
) -> str:
    """A run as the daemon would leave it: run row, the real run's events, its captured logs."""
    run_id = str(uuid.uuid4())
    run = dg.DagsterRun(job_name=job_name, run_id=run_id, status=status, tags=tags)
    instance.add_run(run)
    instance.event_log_storage.store_event_batch(
        [entry._replace(run_id=run_id) for entry in template]
    )
    if template_logs.exists():
        shutil.copytree(template_logs, template_logs.parent / run_id)
    return run_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--keep-refresh-hours", type=float, default=KEEP_REFRESH_HOURS)
    parser.add_argument("--keep-refresh-logs-hours", type=float, default=KEEP_REFRESH_LOGS_HOURS)
    parser.add_argument("--failure-every", type=int, default=720)
    parser.add_argument(
        "--failing-day", type=int, default=4, help="the simulated day (1-based) every run fails"
    )
    parser.add_argument("--replay", type=int, default=20)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="run-history-"))
    dagster_home, data = work / "dagster_home", work / "data"
    dagster_home.mkdir()
    shutil.copy(ROOT / "deploy" / "dagster.local.yaml", dagster_home / "dagster.yaml")
    real_ms = int(datetime.fromisoformat(REAL_RUN_DAY).replace(tzinfo=timezone.utc).timestamp())
    real_ms *= 1000
    # The simulated week starts after the real now: the instance stamps runs with real time, and
    # the sensor skips a day whose run was created after the newest candle closed (the live
    # loader's). Real stamps before every simulated close keep the sensor as it runs live: a
    # run for each closed candle.
    first_ms = (int(time.time() * 1000) // DAY_MS + 1) * DAY_MS
    now_ms = [real_ms + MINUTE_MS + 30_000]
    klines = {
        ("BTCUSDT", "1m"): synthetic_klines("1m", real_ms, real_ms + DAY_MS)
        + synthetic_klines("1m", first_ms, first_ms + (args.days + 1) * DAY_MS)
    }
    started = time.monotonic()
    with BinanceStandIn(klines, clock_ms=lambda: now_ms[0]) as standin:
        now_ms[0] = real_ms + 12 * 60 * MINUTE_MS + 30_000
        real_refresh_run(dagster_home, data, standin.url, REAL_RUN_DAY)  # creates the databases
        before, logs_before = folder_bytes(dagster_home), logs_bytes(dagster_home)
        real_refresh_run(dagster_home, data, standin.url, REAL_RUN_DAY)
        per_run = folder_bytes(dagster_home) - before
        per_run_logs = logs_bytes(dagster_home) - logs_before
        os.environ["DAGSTER_HOME"] = str(dagster_home)  # as make sets it; the event log needs it
        instance = dg.DagsterInstance.get()
        template_run = instance.get_runs(limit=1)[0]
        template = list(instance.all_logs(template_run.run_id))
        template_logs = dagster_home / "storage" / template_run.run_id
        replay_started = folder_bytes(dagster_home)
        for _ in range(args.replay):
            record_run(instance, template, template_logs, dict(template_run.tags), SUCCESS)
        replayed = (folder_bytes(dagster_home) - replay_started) / max(args.replay, 1)
        print(
            f"per run: {per_run / 1024:.0f} KiB (a real refresh run, {len(template)} events),"
            f" of which logs {per_run_logs / 1024:.0f} KiB and its record"
            f" {(per_run - per_run_logs) / 1024:.0f} KiB;"
            f" {replayed / 1024:.0f} KiB each for {args.replay} replayed runs",
            flush=True,
        )
        now_ms[0] = first_ms + 30_000
        resources = {"binance": BinanceResource(base_url=standin.url)}
        cursor = None
        launched = 0
        ever = args.replay + 2
        real_times: list[tuple[int, datetime]] = []  # (simulated ms, real time) of each run
        deleted_today = 0
        ticks = TickRecorder(instance)
        for minute in range(args.days * 1440):
            now_ms[0] = first_ms + minute * MINUTE_MS + 30_000
            failing_day = minute // 1440 + 1 == args.failing_day
            context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources)
            result = fresh_klines_sensor(context)
            run_ids: list[str] = []
            if isinstance(result, dg.SensorResult):
                cursor = result.cursor
                for request in result.run_requests or []:
                    launched += 1
                    failed = failing_day or (
                        args.failure_every and launched % args.failure_every == 0
                    )
                    real_times.append((now_ms[0], datetime.now(timezone.utc)))
                    tags = {
                        **request.tags,
                        "dagster/partition": request.partition_key,
                        "dagster/run_key": request.run_key,
                    }
                    status = FAILURE if failed else SUCCESS
                    run_ids.append(record_run(instance, template, template_logs, tags, status))
            ticks.record(now_ms[0], run_ids)
            if minute % 60 == 59:  # the analytics sensor's run after the hour's refreshes
                tags = {
                    "dagster/sensor_name": analytics_automation_sensor.name,
                    "dagster/partition": request_day(now_ms[0]),
                }
                record_run(instance, template, template_logs, tags, SUCCESS, "analytics")
            if minute % 60 == 30:
                # the instance stamps runs with real time: a simulated cutoff becomes the real
                # time just after the last run launched before it
                def cutoff(hours: float) -> datetime:
                    return real_cutoff(real_times, now_ms[0], hours) or BEFORE_ANY_RUN

                if real_cutoff(real_times, now_ms[0], args.keep_refresh_logs_hours):
                    pruned = prune_run_history(
                        instance,
                        cutoff(args.keep_refresh_hours),
                        cutoff(args.keep_refresh_logs_hours),
                        failed_runs_before=cutoff(KEEP_FAILED_DAYS * 24),
                        failed_logs_before=cutoff(KEEP_FAILED_LOGS_DAYS * 24),
                        run_logs_before=cutoff(KEEP_RUN_LOGS_DAYS * 24),
                    )
                    deleted_today += len(pruned.deleted_run_ids + pruned.deleted_failed_run_ids)
                record_run(instance, template, template_logs, {}, SUCCESS, PRUNE_JOB_NAME)
                ever += 1
            if minute % 60 == 59:
                ever += 1
            if minute % 1440 == 1439:
                ticks.purge(now_ms[0])
                runs = len(instance.get_run_ids())
                pruned_logs = instance.get_runs_count(
                    dg.RunsFilter(tags={LOGS_PRUNED_TAG: "pruned"})
                )
                size = folder_bytes(dagster_home)
                print(
                    f"day {minute // 1440 + 1}{' (every refresh failed)' if failing_day else ''}:"
                    f" {runs} runs ({deleted_today} deleted today, {runs - pruned_logs} with"
                    f" logs), {ticks.stored()} sensor ticks, DAGSTER_HOME {size / 2**20:.0f} MiB"
                    f" on disk (WAL {wal_bytes(dagster_home) / 2**20:.0f} MiB);"
                    f" runs ever made {ever + launched}; {time.monotonic() - started:.0f}s elapsed",
                    flush=True,
                )
                deleted_today = 0
    print(f"DAGSTER_HOME left in {dagster_home} (delete it when done)")


if __name__ == "__main__":
    main()
