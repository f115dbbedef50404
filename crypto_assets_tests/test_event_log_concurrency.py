"""The local event log under concurrency: writers in several processes, a batch that fails part
way, and two processes creating the database at once."""

import fcntl
import logging
import multiprocessing
import os
import queue
import shutil
import sqlite3
import time
import uuid
from collections import Counter
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.events import (
    DagsterEvent,
    DagsterEventBatchMetadata,
    DagsterEventType,
    StepMaterializationData,
)

from crypto_assets.storage.event_log import INIT_LOCK_FILE, LocalEventLogStorage
from crypto_assets_tests.conftest import LOCAL_YAML

ASSET = dg.AssetKey("shared_asset")
WRITERS = 4
BATCHES = 5
BATCH_SIZE = 20
PROCESSES = multiprocessing.get_context("forkserver")
"""Fresh processes, as the webserver, daemon and run workers are: SQLite must not be open in a
process that forks (a child inherits its locks' bookkeeping), and pytest's process has it open."""
PROCESSES.set_forkserver_preload(["dagster", __name__])


def materialization(run_id: str, partition: str) -> dg.EventLogEntry:
    return dg.EventLogEntry(
        error_info=None,
        level=logging.DEBUG,
        user_message="",
        run_id=run_id,
        timestamp=time.time(),
        step_key="writer",
        job_name="writer_job",
        dagster_event=DagsterEvent(
            DagsterEventType.ASSET_MATERIALIZATION.value,
            "writer_job",
            event_specific_data=StepMaterializationData(
                dg.AssetMaterialization(asset_key=ASSET, partition=partition)
            ),
        ),
    )


def log_line(run_id: str, message: str) -> dg.EventLogEntry:
    return dg.EventLogEntry(
        error_info=None,
        level=logging.INFO,
        user_message=message,
        run_id=run_id,
        timestamp=time.time(),
        step_key="writer",
        job_name="writer_job",
    )


def batch_events(run_id: str, writer: int, batch: int) -> list[dg.EventLogEntry]:
    """Materializations with a log line every fifth event: asset groups split by other events."""
    return [
        log_line(run_id, f"w{writer}-b{batch}-e{index}")
        if index % 5 == 4
        else materialization(run_id, f"w{writer}-b{batch}-e{index}")
        for index in range(BATCH_SIZE)
    ]


def send_batch(instance: dg.DagsterInstance, events: list[dg.EventLogEntry]) -> None:
    """As a run worker hands events over: one batch id, the last event closing the batch."""
    batch_id = str(uuid.uuid4())
    for index, event in enumerate(events):
        instance.handle_new_event(
            event,
            batch_metadata=DagsterEventBatchMetadata(batch_id, index == len(events) - 1),
        )


def new_home(tmp_path: Path) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir(parents=True)
    shutil.copy(LOCAL_YAML, home / "dagster.yaml")
    return home


def open_instance(home: str) -> dg.DagsterInstance:
    """The instance in ``home`` from a fresh process, whose environment is the fork server's."""
    os.environ["DAGSTER_HOME"] = home
    os.environ["DAGSTER_EVENT_BATCH_SIZE"] = "1000"
    return dg.DagsterInstance.from_config(home)


def write_batches(home: str, run_id: str, writer: int, barrier) -> None:
    with open_instance(home) as instance:
        instance.add_run(dg.DagsterRun(job_name="writer_job", run_id=run_id))
        barrier.wait(timeout=60)
        for batch in range(BATCHES):
            send_batch(instance, batch_events(run_id, writer, batch))


def stored_names(instance: dg.DagsterInstance, run_id: str) -> Counter:
    """Each stored event by its partition (a materialization) or its message (a log line)."""
    names: Counter = Counter()
    for entry in instance.all_logs(run_id):
        if entry.dagster_event is None:
            names[entry.user_message] += 1
        else:
            names[entry.dagster_event.partition] += 1
    return names


def expected_names(writer: int, batches: int = BATCHES) -> Counter:
    return Counter(
        f"w{writer}-b{batch}-e{index}" for batch in range(batches) for index in range(BATCH_SIZE)
    )


@pytest.mark.faults
def test_writers_in_several_processes_store_every_event_once(tmp_path, monkeypatch):
    home = new_home(tmp_path)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "1000")
    run_ids = [str(uuid.uuid4()) for _ in range(WRITERS)]
    start_in_a_process(home)  # Dagster's run storage does not take two creators at once
    barrier = PROCESSES.Barrier(WRITERS)
    writers = [
        PROCESSES.Process(target=write_batches, args=(str(home), run_id, writer, barrier))
        for writer, run_id in enumerate(run_ids)
    ]
    for process in writers:
        process.start()
    for process in writers:
        process.join(timeout=120)
    assert [process.exitcode for process in writers] == [0] * WRITERS

    with dg.DagsterInstance.from_config(str(home)) as instance:
        for writer, run_id in enumerate(run_ids):
            assert stored_names(instance, run_id) == expected_names(writer)
        materialized = instance.get_materialized_partitions(ASSET)
        assert len(materialized) == WRITERS * BATCHES * 16
        assert "w3-b4-e18" in materialized and "w3-b4-e19" not in materialized
        record = instance.get_asset_records([ASSET])[0].asset_entry
        assert record.last_materialization.dagster_event.partition.endswith("-b4-e18")


@pytest.mark.faults
def test_a_batch_that_fails_part_way_leaves_each_event_stored_once(local_instance, monkeypatch):
    """The third asset group of the batch fails once, as a locked database would: Dagster's
    fallback then stores the batch event by event, and nothing of the failed try remains."""
    run_id = str(uuid.uuid4())
    local_instance.add_run(dg.DagsterRun(job_name="writer_job", run_id=run_id))
    storage = local_instance.event_log_storage
    assert isinstance(storage, LocalEventLogStorage)
    real_store_asset_events = storage._store_asset_events
    groups: list[int] = []

    def fails_on_third_group(events):
        groups.append(len(events))
        if len(groups) == 3:
            raise sqlite3.OperationalError("database is locked")
        real_store_asset_events(events)

    monkeypatch.setattr(storage, "_store_asset_events", fails_on_third_group)
    send_batch(local_instance, batch_events(run_id, 0, 0))

    assert groups == [4, 4, 4]  # the batch got as far as its third group, then fell back
    assert stored_names(local_instance, run_id) == expected_names(0, batches=1)
    assert len(local_instance.get_materialized_partitions(ASSET)) == 16


def add_first_run(home: str) -> None:
    with open_instance(home) as instance:
        instance.add_run(dg.DagsterRun(job_name="first", run_id=str(uuid.uuid4())))


def start_in_a_process(home: Path) -> None:
    """The instance's databases created by one process, as a first `make run` leaves them."""
    first = PROCESSES.Process(target=add_first_run, args=(str(home),))
    first.start()
    first.join(timeout=60)
    assert first.exitcode == 0


def create_instance(home: str, barrier, results) -> None:
    barrier.wait(timeout=60)
    try:
        with open_instance(home) as instance:
            run = instance.add_run(dg.DagsterRun(job_name="starter", run_id=str(uuid.uuid4())))
            instance.report_engine_event("started", run)
        results.put("ok")
    except Exception as error:  # the test reports what each process met
        results.put(f"{type(error).__name__}: {error}")


@pytest.mark.faults
def test_processes_creating_the_event_log_at_once_on_an_existing_home_all_start(
    tmp_path, monkeypatch
):
    """An existing DAGSTER_HOME (runs and schedules already there) without event_log.db, as after
    an upgrade: the webserver, the daemon and run workers start together and each creates it."""
    for round_number in range(2):
        home = new_home(tmp_path / f"round{round_number}")
        monkeypatch.setenv("DAGSTER_HOME", str(home))
        start_in_a_process(home)
        for leftover in (home / "history").glob("event_log.db*"):
            leftover.unlink()

        starters = 6
        barrier, results = PROCESSES.Barrier(starters), PROCESSES.Queue()
        processes = [
            PROCESSES.Process(target=create_instance, args=(str(home), barrier, results))
            for _ in range(starters)
        ]
        for process in processes:
            process.start()
        outcomes = [results.get(timeout=120) for _ in processes]
        for process in processes:
            process.join(timeout=30)
        assert outcomes == ["ok"] * starters, outcomes

        with dg.DagsterInstance.from_config(str(home)) as instance:
            assert len(instance.get_runs()) == starters + 1
            started = [run.run_id for run in instance.get_runs() if run.job_name == "starter"]
            assert [
                [entry.message for entry in instance.all_logs(run_id)] for run_id in started
            ] == [["started"]] * starters
        with sqlite3.connect(home / "history" / "event_log.db") as connection:
            assert connection.execute("pragma page_size").fetchone() == (16384,)


@pytest.mark.faults
def test_a_process_starting_while_another_creates_the_event_log_waits_for_it(tmp_path):
    """The test holds the creation lock as a creating process would: a second process waits for
    it rather than creating the tables alongside, then starts."""
    home = new_home(tmp_path)
    start_in_a_process(home)
    for leftover in (home / "history").glob("event_log.db*"):
        leftover.unlink()
    with open(home / "history" / INIT_LOCK_FILE, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        barrier, results = PROCESSES.Barrier(1), PROCESSES.Queue()
        starter = PROCESSES.Process(target=create_instance, args=(str(home), barrier, results))
        starter.start()
        with pytest.raises(queue.Empty):
            results.get(timeout=5)
        fcntl.flock(lock, fcntl.LOCK_UN)
    assert results.get(timeout=60) == "ok"
    starter.join(timeout=30)
