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
