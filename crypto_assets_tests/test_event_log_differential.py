"""The local event log against Dagster's own: the same events, in the same batches, give the
instance the same answers about assets, partitions, checks and run logs."""

import uuid

import dagster as dg
from dagster._core.events import DagsterEventBatchMetadata
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

from crypto_assets.storage.event_log import LocalEventLogStorage

DAYS = dg.DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-01-05")
BAD_DAY = "2024-01-02"
POSITIVE = dg.AssetCheckKey(dg.AssetKey("prices"), "positive")
BATCH = 7
"""Events a batch: batches then cut across asset groups, log lines and run events."""


@dg.asset(
    partitions_def=DAYS,
    check_specs=[dg.AssetCheckSpec("positive", asset="prices", blocking=True, partitions_def=DAYS)],
)
def prices(context: dg.AssetExecutionContext):
    yield dg.Output(None, data_version=dg.DataVersion(context.partition_key))
    yield dg.AssetCheckResult(check_name="positive", passed=context.partition_key != BAD_DAY)


@dg.asset(partitions_def=DAYS, deps=[prices], backfill_policy=dg.BackfillPolicy.single_run())
def daily_summary(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"days": len(context.partition_keys)})


def recorded_runs(instance: dg.DagsterInstance) -> list[tuple[dg.DagsterRun, list]]:
    """Real runs' records and events: three single days (one fails its blocking check) and a
    range run of three days."""
    for day in ("2024-01-01", BAD_DAY, "2024-01-03"):
        dg.materialize(
            [prices, daily_summary], instance=instance, partition_key=day, raise_on_error=False
        )
    dg.materialize(
        [daily_summary],
        selection=[daily_summary],
        instance=instance,
        tags={
            "dagster/asset_partition_range_start": "2024-01-01",
            "dagster/asset_partition_range_end": "2024-01-03",
        },
    )
    runs = sorted(
        instance.get_runs(),
        key=lambda run: instance.get_run_record_by_id(run.run_id).create_timestamp,
    )
    return [(run, list(instance.all_logs(run.run_id))) for run in runs]


def replay(instance: dg.DagsterInstance, runs: list[tuple[dg.DagsterRun, list]]) -> None:
    """Each run's record, then its events in batches of ``BATCH`` as a run worker sends them."""
    for run, events in runs:
        instance.add_run(
            dg.DagsterRun(
                job_name=run.job_name,
                run_id=run.run_id,
                tags=run.tags,
                asset_selection=run.asset_selection,
            )
        )
        for start in range(0, len(events), BATCH):
            batch, batch_id = events[start : start + BATCH], str(uuid.uuid4())
            for index, event in enumerate(batch):
                instance.handle_new_event(
                    event,
                    batch_metadata=DagsterEventBatchMetadata(batch_id, index == len(batch) - 1),
                )


def answers(instance: dg.DagsterInstance, runs: list[tuple[dg.DagsterRun, list]]) -> dict:
    """What the UI and the automation ask the instance, in terms that do not name storage ids."""
    keys = [prices.key, daily_summary.key]
    records = {
        record.asset_entry.asset_key: record.asset_entry
        for record in instance.get_asset_records(keys)
    }

    def described(event) -> tuple | None:
        return event and (event.run_id, event.timestamp, event.dagster_event.partition)

    return {
        "assets": {
            key.to_user_string(): (
                described(records[key].last_materialization),
                records[key].last_run_id,
                sorted(instance.get_materialized_partitions(key)),
                instance.get_status_by_partition(key, DAYS.get_partition_keys(), DAYS),
                instance.get_latest_materialization_code_versions([key]),
                [
                    (record.run_id, record.partition_key, record.timestamp)
                    for record in instance.fetch_materializations(key, limit=100).records
                ],
                [
                    (record.run_id, record.partition_key)
                    for record in instance.fetch_planned_materializations(key, limit=100).records
                ],
            )
            for key in keys
        },
        "checks": [
            (
                record.run_id,
                record.status,
                record.partition,
                record.event and record.event.message,
            )
            for record in instance.event_log_storage.get_asset_check_execution_history(
                POSITIVE, limit=100
            )
        ],
        "runs": {
            run.run_id: (
                instance.get_run_by_id(run.run_id).status,
                [
                    (entry.dagster_event_type, entry.message, entry.step_key, entry.timestamp)
                    for entry in instance.all_logs(run.run_id)
                ],
            )
            for run, _ in runs
        },
    }


def test_the_same_events_give_the_same_answers_as_dagsters_own_sqlite_event_log(
    tmp_path, local_instance
):
    with dg.DagsterInstance.local_temp(str(tmp_path)) as source:
        runs = recorded_runs(source)
    assert [run.status for run, _ in runs] == [
        dg.DagsterRunStatus.SUCCESS,
        dg.DagsterRunStatus.FAILURE,
        dg.DagsterRunStatus.SUCCESS,
        dg.DagsterRunStatus.SUCCESS,
    ]
    assert isinstance(local_instance.event_log_storage, LocalEventLogStorage)
    with dg.DagsterInstance.local_temp() as dagster_own:
        assert type(dagster_own.event_log_storage).__name__ == "SqliteEventLogStorage"
        replay(dagster_own, runs)
        replay(local_instance, runs)
        expected, actual = answers(dagster_own, runs), answers(local_instance, runs)

    assert actual["checks"] == expected["checks"]
    assert actual["runs"] == expected["runs"]
    assert actual["assets"] == expected["assets"]
    assert [(status, partition) for _, status, partition, _ in actual["checks"]] == [
        (AssetCheckExecutionRecordStatus.SUCCEEDED, "2024-01-03"),
        (AssetCheckExecutionRecordStatus.FAILED, BAD_DAY),
        (AssetCheckExecutionRecordStatus.SUCCEEDED, "2024-01-01"),
    ]
    assert actual["assets"]["daily_summary"][2] == ["2024-01-01", "2024-01-02", "2024-01-03"]
