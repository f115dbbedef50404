"""Keeps Dagster's run history bounded: the fresh-data sensor launches a run every minute.

A refresh run of a day is superseded once a later run of the same day succeeded (the day's
final run, or a newer refresh). Superseded refreshes lose their logs (events, check executions,
captured output) after ``keep_refresh_logs_hours`` and stay in the run list, with their status,
times and tags, until ``keep_refresh_hours``, when they are deleted. This job's own successful
runs and the analytics sensor's successful runs that a newer run of the same assets and days
replaced (the analytics tables are rewritten, so the older run describes nothing that is still
there) are deleted after ``keep_refresh_hours`` too.

Failed runs of any job: of one job's failed runs for one day (its partition, or the UTC day it was
created if it has none), the first and the newest ``FAILED_RUNS_PER_DAY - 1`` are kept and the
rest deleted, so a day on which every refresh fails (a notebook holding the DuckDB file: 1,440
failed runs) keeps 24. The kept ones lose their logs after ``keep_failed_logs_days`` and are
deleted after ``keep_failed_days``. Every other run (final runs, scheduled runs, the newest run of
a day, other jobs' runs) stays listed, and after ``keep_run_logs_days`` loses its logs but not its
asset events: Dagster reads a day's status and last materialization from them, and a final run
may be the only record that its day was written. It runs hourly, so the history never holds much
more than the windows (a daily prune would let a third day pile up in between).
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import dagster as dg

from crypto_assets.analytics.definitions import analytics_automation_sensor
from crypto_assets.automation.jobs import kline_lineage_job
from crypto_assets.storage.run_history import (
    LOGS_PRUNED_TAG,
    delete_run_everywhere,
    delete_run_logs,
    delete_run_logs_keeping_lineage,
)

TRIGGER_TAG = "crypto_assets/trigger"
SENSOR_TRIGGER = "fresh_klines_sensor"
REFRESH_TRIGGERS = [SENSOR_TRIGGER, "live_loader"]  # the live loader's runs are refreshes too
PARTITION_TAG = "dagster/partition"
RUN_KEY_TAG = "dagster/run_key"
SENSOR_NAME_TAG = "dagster/sensor_name"
RANGE_TAGS = ("dagster/asset_partition_range_start", "dagster/asset_partition_range_end")
KEEP_REFRESH_HOURS = 48
KEEP_REFRESH_LOGS_HOURS = 6
"""A superseded refresh's logs (about 150 KB a run) matter while someone looks into the last few
hours; its place in the run list costs about 8 KB and shows two days of refreshes."""
FAILED_RUNS_PER_DAY = 24
"""Failed runs kept per job and day: the day's first failure (when it started) and the 23 newest
(how it goes on); about 8 KiB each once their logs are pruned."""
KEEP_FAILED_LOGS_DAYS = 7
"""A week to look into a failure with its events and captured output."""
KEEP_FAILED_DAYS = 30
KEEP_RUN_LOGS_DAYS = 30
"""Logs of final, scheduled and other kept runs: a month; their asset events stay for good."""
PRUNE_CRON = "30 * * * *"
"""Half past every hour: clear of the daily schedule (00:10) and the day's final run."""
PRUNE_JOB_NAME = "prune_run_history"


@dataclass(frozen=True)
class PruneResult:
    deleted_run_ids: list[str]
    logs_pruned_run_ids: list[str]
    kept_refresh_runs: int
    deleted_failed_run_ids: list[str]
    lineage_only_run_ids: list[str]


def superseded_refresh_runs(
    instance: dg.DagsterInstance, older_than: datetime
) -> list[dg.RunRecord]:
    """Successful non-final refresh runs created before ``older_than``, whose day has a newer
    successful run: the day's data stays described by the run that wrote it last."""
    candidates = instance.get_run_records(
        dg.RunsFilter(
            job_name=kline_lineage_job.name,
            statuses=[dg.DagsterRunStatus.SUCCESS],
            tags={TRIGGER_TAG: REFRESH_TRIGGERS},
            created_before=older_than,
        )
    )
    by_day: dict[str, list[dg.RunRecord]] = defaultdict(list)
    for record in candidates:
        tags = record.dagster_run.tags
        if PARTITION_TAG in tags and not tags.get(RUN_KEY_TAG, "").endswith("@final"):
            by_day[tags[PARTITION_TAG]].append(record)
    superseded = []
    for day, records in by_day.items():
        newest = instance.get_run_records(
            dg.RunsFilter(
                job_name=kline_lineage_job.name,
                statuses=[dg.DagsterRunStatus.SUCCESS],
                tags={PARTITION_TAG: day},
            ),
            limit=1,
        )
        newest_id = newest[0].dagster_run.run_id if newest else None
        superseded += [record for record in records if record.dagster_run.run_id != newest_id]
    return superseded


def earlier_prune_runs(instance: dg.DagsterInstance, older_than: datetime) -> list[str]:
    """This job's own successful runs before the window: each only says what it deleted."""
    return [
        record.dagster_run.run_id
        for record in instance.get_run_records(
            dg.RunsFilter(
                job_name=PRUNE_JOB_NAME,
                statuses=[dg.DagsterRunStatus.SUCCESS],
                created_before=older_than,
            )
        )
    ]


def superseded_analytics_runs(instance: dg.DagsterInstance, older_than: datetime) -> list[str]:
    """Successful analytics-sensor runs before the window that a newer successful run of the same
    assets and partitions followed (runs come newest first, so the first of each kind is kept)."""
    seen: set[tuple] = set()
    superseded = []
    for record in instance.get_run_records(
        dg.RunsFilter(
            statuses=[dg.DagsterRunStatus.SUCCESS],
            tags={SENSOR_NAME_TAG: analytics_automation_sensor.name},
        )
    ):
        run = record.dagster_run
        kind = (
            tuple(sorted(key.to_user_string() for key in run.asset_selection or ())),
            run.tags.get(PARTITION_TAG),
            *(run.tags.get(tag) for tag in RANGE_TAGS),
        )
        if kind in seen and record.create_timestamp < older_than:
            superseded.append(run.run_id)
        seen.add(kind)
    return superseded


def failed_runs_over_the_day_cap(records: list[dg.RunRecord]) -> list[str]:
    """Failed runs beyond ``FAILED_RUNS_PER_DAY`` for one job and day, keeping the day's first and
    newest (records come newest first). A run's day is its partition, the day its data is of:
    a refresh fails on that day, its final run the next; a run without one counts by the UTC day
    it was created."""
    groups: dict[tuple, list[str]] = defaultdict(list)
    for record in records:
        run = record.dagster_run
        day = run.tags.get(PARTITION_TAG) or record.create_timestamp.astimezone(timezone.utc).date()
        groups[(run.job_name, day)].append(run.run_id)
    return [
        run_id for run_ids in groups.values() for run_id in run_ids[FAILED_RUNS_PER_DAY - 1 : -1]
    ]


def _unpruned(instance: dg.DagsterInstance, runs_filter: dg.RunsFilter) -> list[str]:
    return [
        record.dagster_run.run_id
        for record in instance.get_run_records(runs_filter)
        if LOGS_PRUNED_TAG not in record.dagster_run.tags
    ]


def prune_failed_and_kept_runs(
    instance: dg.DagsterInstance,
    failed_runs_before: datetime,
    failed_logs_before: datetime,
    run_logs_before: datetime,
) -> tuple[list[str], list[str]]:
    """Deletes failed runs over the day cap or created before ``failed_runs_before``; prunes the
    logs, not the asset events, of failed runs created before ``failed_logs_before`` and of every
    other finished run created before ``run_logs_before``. Returns (deleted, logs pruned)."""
    failure = dg.DagsterRunStatus.FAILURE
    deleted = failed_runs_over_the_day_cap(
        instance.get_run_records(dg.RunsFilter(statuses=[failure]))
    )
    deleted += [
        record.dagster_run.run_id
        for record in instance.get_run_records(
            dg.RunsFilter(statuses=[failure], created_before=failed_runs_before)
        )
        if record.dagster_run.run_id not in deleted
    ]
    for run_id in deleted:
        delete_run_everywhere(instance, run_id)
    pruned = _unpruned(
        instance, dg.RunsFilter(statuses=[failure], created_before=failed_logs_before)
    )
    pruned += _unpruned(
        instance,
        dg.RunsFilter(
            statuses=[dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.CANCELED],
            created_before=run_logs_before,
        ),
    )
    for run_id in pruned:
        delete_run_logs_keeping_lineage(instance, run_id)
    return deleted, pruned


def prune_run_history(
    instance: dg.DagsterInstance,
    runs_before: datetime,
    logs_before: datetime,
    failed_runs_before: datetime | None = None,
    failed_logs_before: datetime | None = None,
    run_logs_before: datetime | None = None,
) -> PruneResult:
    """Deletes the runs above created before ``runs_before``; prunes the logs of superseded
    refreshes created before ``logs_before``; then prunes failed and kept runs
    (``prune_failed_and_kept_runs``), each window defaulting to its constant before now."""
    superseded = superseded_refresh_runs(instance, max(runs_before, logs_before))
    run_ids = [
        record.dagster_run.run_id for record in superseded if record.create_timestamp < runs_before
    ]
    run_ids += earlier_prune_runs(instance, runs_before)
    run_ids += superseded_analytics_runs(instance, runs_before)
    for run_id in run_ids:
        delete_run_everywhere(instance, run_id)
    logs_pruned = [
        record.dagster_run.run_id
        for record in superseded
        if record.create_timestamp >= runs_before and LOGS_PRUNED_TAG not in record.dagster_run.tags
    ]
    for run_id in logs_pruned:
        delete_run_logs(instance, run_id)
    now = datetime.now(timezone.utc)
    failed_deleted, lineage_only = prune_failed_and_kept_runs(
        instance,
        failed_runs_before or now - timedelta(days=KEEP_FAILED_DAYS),
        failed_logs_before or now - timedelta(days=KEEP_FAILED_LOGS_DAYS),
        run_logs_before or now - timedelta(days=KEEP_RUN_LOGS_DAYS),
    )
    kept = instance.get_runs_count(
        dg.RunsFilter(job_name=kline_lineage_job.name, tags={TRIGGER_TAG: REFRESH_TRIGGERS})
    )
    return PruneResult(
        deleted_run_ids=run_ids,
        logs_pruned_run_ids=logs_pruned,
        kept_refresh_runs=kept,
        deleted_failed_run_ids=failed_deleted,
        lineage_only_run_ids=lineage_only,
    )


class PruneConfig(dg.Config):
    keep_refresh_hours: float = KEEP_REFRESH_HOURS
    keep_refresh_logs_hours: float = KEEP_REFRESH_LOGS_HOURS
    keep_failed_logs_days: float = KEEP_FAILED_LOGS_DAYS
    keep_failed_days: float = KEEP_FAILED_DAYS
    keep_run_logs_days: float = KEEP_RUN_LOGS_DAYS


@dg.op(
    description="Prunes the logs of superseded refresh runs older than keep_refresh_logs_hours"
    " and deletes superseded runs older than keep_refresh_hours; caps failed runs a day, prunes"
    " their logs after keep_failed_logs_days and deletes them after keep_failed_days; prunes"
    " other runs' logs, not their asset events, after keep_run_logs_days."
)
def prune_superseded_refresh_runs(context: dg.OpExecutionContext, config: PruneConfig) -> None:
    now = datetime.now(timezone.utc)
    logs_hours = min(config.keep_refresh_logs_hours, config.keep_refresh_hours)
    result = prune_run_history(
        context.instance,
        runs_before=now - timedelta(hours=config.keep_refresh_hours),
        logs_before=now - timedelta(hours=logs_hours),
        failed_runs_before=now - timedelta(days=config.keep_failed_days),
        failed_logs_before=now - timedelta(days=config.keep_failed_logs_days),
        run_logs_before=now - timedelta(days=config.keep_run_logs_days),
    )
    context.log.info(
        f"Deleted {len(result.deleted_run_ids)} superseded runs older than"
        f" {config.keep_refresh_hours:g} h and the logs of {len(result.logs_pruned_run_ids)}"
        f" superseded refresh runs older than {config.keep_refresh_logs_hours:g} h;"
        f" deleted {len(result.deleted_failed_run_ids)} failed runs (over"
        f" {FAILED_RUNS_PER_DAY} a day, or older than {config.keep_failed_days:g} days) and"
        f" pruned the logs of {len(result.lineage_only_run_ids)} older runs, keeping their"
        f" asset events; {result.kept_refresh_runs} sensor runs remain."
    )


@dg.job(
    name=PRUNE_JOB_NAME,
    description="Keeps the run history bounded: superseded refreshes, failed runs, old logs.",
)
def prune_run_history_job() -> None:
    prune_superseded_refresh_runs()


prune_run_history_schedule = dg.ScheduleDefinition(
    name="prune_run_history_schedule",
    job=prune_run_history_job,
    cron_schedule=PRUNE_CRON,
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Hourly: superseded refreshes' logs after 6 h, the runs after 48 h; 24 failed runs"
    " a day, their logs 7 days, the runs 30 days; other runs' logs 30 days.",
)
