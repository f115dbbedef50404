"""The local Dagster instance's event log: every run's events in one SQLite file, in batches.

Dagster's default SQLite event log gives each run a database file of its own (about 100 KB of
empty tables before the first event) and copies every asset event into a second, cross-run
index file. The fresh-data sensor launches a run every minute, so that layout cost a file and
about 440 KB a run. Dagster's consolidated SQLite storage keeps one file instead; this storage
builds on it and changes two things:

- Batches in one commit. A range run over N days records, per asset, N "planned" events before
  it starts and N materializations when the asset's output is stored; committed one by one (two
  fresh connections and an fsync each, about 15 ms) they were the largest cost of a long
  backfill. Dagster hands them over in batches when ``DAGSTER_EVENT_BATCH_SIZE`` is set; the
  whole batch goes in as one transaction, all of it or none, with the same rows ``store_event``
  writes for each event. All or none matters: when a batch fails, Dagster stores each of its
  events again one by one, so a batch committed in parts would leave the committed part twice.
  A check planned over N days writes its N per-day rows with one executemany.
- 16 KB pages. An event is about 1.5 KB of JSON, so a 4 KB page held two and left a quarter empty.
- A database created by two processes at once (the webserver and the daemon starting on a
  DAGSTER_HOME that has no event_log.db yet) is created once. Dagster's consolidated storage
  neither retries nor keeps its schema stamp (it leaves the stamp uncommitted), so every process
  start checks and creates the tables again; two at once failed with "table already exists" or,
  more rarely, started without seeing ``event_logs``. Processes take turns under a file lock.

``deploy/dagster.local.yaml`` selects it, for every process that loads the instance (webserver,
daemon, run workers, ``dagster asset materialize``).
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager

from dagster import Field

# Subclassing Dagster's SQLite event log (no public export) is the only way to change the storage
# every local Dagster process loads from dagster.yaml.
from dagster._config import StringSource
from dagster._core.events import ASSET_EVENTS
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.event_log.schema import (
    AssetCheckExecutionsTable,
    SqlEventLogStorageTable,
)
from dagster._core.storage.event_log.sqlite.consolidated_sqlite_event_log import (
    ConsolidatedSqliteEventLogStorage,
)
from dagster._serdes import ConfigurableClassData, serialize_value
from sqlalchemy.engine import Connection

EVENT_BATCH_SIZE = 1000
"""Events per batch: a year of days per asset in one commit, few enough to keep a batch small."""

PAGE_SIZE = 16_384
"""Bytes per SQLite page: about ten 1.5 KB events a page instead of two."""

INIT_LOCK_FILE = "event_log.db.init-lock"
"""Held while a process checks and creates the database's tables, so two never do it at once."""


def _default_base_dir() -> str:
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        raise ValueError(
            "LocalEventLogStorage (deploy/dagster.local.yaml) keeps its file under DAGSTER_HOME:"
            " set DAGSTER_HOME to the instance folder, as make does, or give the storage a"
            " base_dir in dagster.yaml."
        )
    return os.path.join(home, "history")


class LocalEventLogStorage(ConsolidatedSqliteEventLogStorage):
    """One SQLite file for every run's events, asset-event batches in one commit."""

    def __init__(self, base_dir: str | None = None, inst_data: ConfigurableClassData | None = None):
        self._batch = threading.local()
        super().__init__(base_dir or _default_base_dir(), inst_data=inst_data)
        os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", str(EVENT_BATCH_SIZE))

    @classmethod
    def config_type(cls) -> dict:
        return {"base_dir": Field(StringSource, is_required=False)}

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: dict
    ) -> LocalEventLogStorage:
        return cls(inst_data=inst_data, **config_value)

    def _init_db(self) -> None:
        """A new file gets its page size before Dagster creates the tables (it is fixed after).
        Processes take turns: one creates the file and its tables, the next finds them there."""
        os.makedirs(self._base_dir, exist_ok=True)
        with open(os.path.join(self._base_dir, INIT_LOCK_FILE), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                with closing(sqlite3.connect(self.get_db_path(), timeout=30)) as connection:
                    connection.execute(f"PRAGMA page_size = {PAGE_SIZE}")
                    connection.execute("PRAGMA journal_mode = WAL")
                super()._init_db()
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    @contextmanager
    def _connect(self) -> Iterator[Connection]:
        """The batch's connection while this thread stores a batch, so that every row the batch
        writes (through Dagster's own ``store_event`` too) commits or rolls back together."""
        batch_connection = getattr(self._batch, "connection", None)
        if batch_connection is not None:
            yield batch_connection
            return
        with super()._connect() as connection:
            yield connection

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        """The batch in one transaction: asset events of one run with one executemany, anything
        else as Dagster's ``store_event`` would store it. A failure rolls all of it back, so
        Dagster's fallback (each event again, one by one) stores every event once."""
        with super()._connect() as connection:
            self._batch.connection = connection
            try:
                self._store_batch(events)
            finally:
                self._batch.connection = None

    def _store_batch(self, events: Sequence[EventLogEntry]) -> None:
        pending: list[EventLogEntry] = []
        for event in events:
            is_asset_event = event.is_dagster_event and event.dagster_event_type in ASSET_EVENTS
            if is_asset_event and (not pending or pending[0].run_id == event.run_id):
                pending.append(event)
                continue
            self._store_asset_events(pending)
            pending = [event] if is_asset_event else []
            if not is_asset_event:
                self.store_event(event)
        self._store_asset_events(pending)

    def _store_asset_events(self, events: list[EventLogEntry]) -> None:
        if not events:
            return
        with self.index_transaction() as connection:
            # One executemany for the batch's rows (the ones store_event writes), their ids back
            # in order: building an INSERT per event cost more than writing it.
            inserted = connection.execute(
                SqlEventLogStorageTable.insert().returning(
                    SqlEventLogStorageTable.c.id, sort_by_parameter_order=True
                ),
                [self._event_to_row(event) for event in events],
            )
            event_ids = [row.id for row in inserted]
            self._store_asset_event_tags(connection, events, event_ids)
            # The asset's row holds "last" values only (last run, last materialization), so
            # the last event of each asset and type leaves it as writing every one in turn would.
            last_events = {
                (event.dagster_event.asset_key, event.dagster_event_type): (event, event_id)
                for event, event_id in zip(events, event_ids, strict=True)
            }
            for event, event_id in last_events.values():
                self._store_asset_event(connection, event, event_id)

    def _store_asset_check_evaluation_planned(
        self, event: EventLogEntry, event_id: int | None
    ) -> None:
        """Dagster's rows for a planned check, one per partition, inserted with executemany."""
        planned = event.dagster_event.event_specific_data
        partition_keys = (
            planned.partitions_subset.get_partition_keys() if planned.partitions_subset else [None]
        )
        row = {
            "asset_key": planned.asset_key.to_string(),
            "check_name": planned.check_name,
            "run_id": event.run_id,
            "execution_status": AssetCheckExecutionRecordStatus.PLANNED.value,
            "evaluation_event": serialize_value(event),
            "evaluation_event_timestamp": self._event_insert_timestamp(event),
            "evaluation_event_storage_id": event_id,
        }
        with self.index_connection() as connection:
            connection.execute(
                AssetCheckExecutionsTable.insert(),
                [{**row, "partition": partition_key} for partition_key in partition_keys],
            )
