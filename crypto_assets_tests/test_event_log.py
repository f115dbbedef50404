"""The local instance's event log: one SQLite file for every run, live logs while a run writes."""

import sqlite3
import threading
import uuid

import dagster as dg


def test_every_run_writes_to_one_file_of_16_kb_pages(local_instance):
    history = local_instance.root_directory + "/history"
    for _ in range(3):
        run = local_instance.add_run(
            dg.DagsterRun(job_name="kline_lineage", run_id=str(uuid.uuid4()))
        )
        local_instance.report_engine_event("an event", run)
    database = local_instance.event_log_storage.get_db_path()
    assert database == f"{history}/event_log.db"
    with sqlite3.connect(database) as connection:
        assert connection.execute("pragma page_size").fetchone() == (16384,)
        assert connection.execute("pragma journal_mode").fetchone() == ("wal",)
        assert connection.execute("select count(distinct run_id) from event_logs").fetchone() == (
            3,
        )


def test_a_watcher_sees_events_as_they_are_written(local_instance):
    run = local_instance.add_run(dg.DagsterRun(job_name="kline_lineage", run_id=str(uuid.uuid4())))
    seen: list[str] = []
    arrived = threading.Event()

    def on_event(entry, _cursor) -> None:
        seen.append(entry.message)
        if len(seen) == 2:
            arrived.set()

    local_instance.event_log_storage.watch(run.run_id, None, on_event)
    try:
        local_instance.report_engine_event("first", run)
        local_instance.report_engine_event("second", run)
        assert arrived.wait(timeout=10), f"the watcher saw only {seen}"
    finally:
        local_instance.event_log_storage.end_watch(run.run_id, on_event)
    assert seen == ["first", "second"]


def test_a_range_runs_materializations_are_stored_in_one_batch_with_their_own_tags(
    local_instance,
):
    days = dg.DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-01-04")

    @dg.asset(partitions_def=days, backfill_policy=dg.BackfillPolicy.single_run())
    def upstream(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        return dg.MaterializeResult(data_version=dg.DataVersion(context.partition_keys[-1]))

    @dg.asset(
        partitions_def=days,
        backfill_policy=dg.BackfillPolicy.single_run(),
        deps=[upstream],
    )
    def downstream() -> None:
        return None

    result = dg.materialize(
        [upstream, downstream],
        instance=local_instance,
        tags={
            "dagster/asset_partition_range_start": "2024-01-01",
            "dagster/asset_partition_range_end": "2024-01-03",
        },
    )
    assert result.success

    for key in (upstream.key, downstream.key):
        records = local_instance.fetch_materializations(key, limit=10, ascending=True).records
        assert [record.partition_key for record in records] == [
            "2024-01-01",
            "2024-01-02",
            "2024-01-03",
        ]
        ids = [record.storage_id for record in records]
        assert ids == sorted(set(ids))
        for record in records:
            own = record.asset_materialization.tags
            assert own["dagster/data_version"]
            stored = local_instance.event_log_storage.get_event_tags_for_asset(
                key, filter_event_id=record.storage_id
            )
            assert stored and all(
                own.get(name) == value for entry in stored for name, value in entry.items()
            ), (record.partition_key, own, stored)
        last = local_instance.get_asset_records([key])[0].asset_entry.last_materialization_record
        assert last.storage_id == ids[-1]
