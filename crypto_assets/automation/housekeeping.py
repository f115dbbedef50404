"""Keeps Dagster's run history bounded: the fresh-data sensor launches a run every minute.

A refresh run of a day is superseded once a later run of the same day succeeded (the day's
final run, or a newer refresh). Superseded refreshes lose their logs (events, check executions,
captured output) after ``keep_refresh_logs_hours`` and stay in the run list, with their status,
times and tags, until ``keep_refresh_hours``, when they are deleted. This job's own successful
runs and the analytics sensor's successful runs that a newer run of the same assets and days
replaced (the analytics tables are rewritten, so the older run describes nothing that is still
there) are deleted after ``keep_refresh_hours`` too; final runs, scheduled runs, failed runs and
every other job's runs are kept. It runs hourly, so the history never holds much more than the
windows (a daily prune would let a third day pile up in between).
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
PRUNE_CRON = "30 * * * *"
"""Half past every hour: clear of the daily schedule (00:10) and the day's final run."""
PRUNE_JOB_NAME = "prune_run_history"


@dataclass(frozen=True)
class PruneResult:
    deleted_run_ids: list[str]
    logs_pruned_run_ids: list[str]
    kept_refresh_runs: int


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


def prune_run_history(
    instance: dg.DagsterInstance, runs_before: datetime, logs_before: datetime
) -> PruneResult:
    """Deletes the runs above created before ``runs_before``; prunes the logs of superseded
    refreshes created before ``logs_before``."""
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
    kept = instance.get_runs_count(
        dg.RunsFilter(job_name=kline_lineage_job.name, tags={TRIGGER_TAG: REFRESH_TRIGGERS})
    )
    return PruneResult(
        deleted_run_ids=run_ids, logs_pruned_run_ids=logs_pruned, kept_refresh_runs=kept
    )


class PruneConfig(dg.Config):
    keep_refresh_hours: float = KEEP_REFRESH_HOURS
    keep_refresh_logs_hours: float = KEEP_REFRESH_LOGS_HOURS


@dg.op(
    description="Prunes the logs of superseded refresh runs older than keep_refresh_logs_hours"
    " and deletes superseded runs older than keep_refresh_hours."
)
def prune_superseded_refresh_runs(context: dg.OpExecutionContext, config: PruneConfig) -> None:
    now = datetime.now(timezone.utc)
    logs_hours = min(config.keep_refresh_logs_hours, config.keep_refresh_hours)
    result = prune_run_history(
        context.instance,
        runs_before=now - timedelta(hours=config.keep_refresh_hours),
        logs_before=now - timedelta(hours=logs_hours),
    )
    context.log.info(
        f"Deleted {len(result.deleted_run_ids)} superseded runs older than"
        f" {config.keep_refresh_hours:g} h and the logs of {len(result.logs_pruned_run_ids)}"
        f" superseded refresh runs older than {config.keep_refresh_logs_hours:g} h;"
        f" {result.kept_refresh_runs} sensor runs remain."
    )


@dg.job(
    name=PRUNE_JOB_NAME,
    description="Keeps the run history bounded: prunes superseded fresh-data refresh runs.",
)
def prune_run_history_job() -> None:
    prune_superseded_refresh_runs()


prune_run_history_schedule = dg.ScheduleDefinition(
    name="prune_run_history_schedule",
    job=prune_run_history_job,
    cron_schedule=PRUNE_CRON,
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Hourly: prunes superseded refresh runs' logs after 6 h, the runs after 48 h.",
)
