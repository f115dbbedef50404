"""The local Dagster instance's event log: Dagster's SQLite storage, writing batches at once.

A range run over N days records, per asset, N "materialization planned" events before it starts
and N materializations when the asset's output is stored. Dagster's SQLite storage commits each
event on its own (two fresh connections and two fsyncs each, about 15 ms), which made the event
log the largest cost of a long backfill. Dagster already hands these events over in batches
when ``DAGSTER_EVENT_BATCH_SIZE`` is set (its own storages for Dagster+ write them in one call);
this storage does the same for SQLite: one transaction per batch in the run's shard and one in
the cross-run index, with the same event rows and tags Dagster's ``store_event`` writes for each
event, and each asset's summary row as the batch's last event leaves it. Nothing else changes:
other events are stored one by one, as before. A check planned over N days also writes N rows
(one per day, for the UI's per-day check status); they go in as one executemany instead of one
N-row VALUES statement, whose compilation alone took seconds for a year.

``deploy/dagster.local.yaml`` selects it; it turns batching on for every process that loads the
instance (webserver, daemon, run workers, ``dagster asset materialize``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from dagster import Field

# Subclassing Dagster's SQLite event log (no public export) is the only way to add a batch write
# to the storage every local Dagster process loads from dagster.yaml.
from dagster._config import StringSource
from dagster._core.events import ASSET_EVENTS
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.event_log.schema import AssetCheckExecutionsTable
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.sqlalchemy_compat import db_result
from dagster._serdes import ConfigurableClassData, serialize_value

EVENT_BATCH_SIZE = 1000
"""Events per batch: a year of days per asset in one commit, few enough to keep a batch small."""


def _default_base_dir() -> str:
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        raise ValueError(
            "BatchingSqliteEventLogStorage (deploy/dagster.local.yaml) keeps its files under"
            " DAGSTER_HOME: set DAGSTER_HOME to the instance folder, as make does, or give the"
            " storage a base_dir in dagster.yaml."
        )
    return os.path.join(home, "history", "runs")


class BatchingSqliteEventLogStorage(SqliteEventLogStorage):
    """SQLite event log (same files, same layout) that writes asset-event batches in one commit."""

    def __init__(self, base_dir: str | None = None, inst_data: ConfigurableClassData | None = None):
        super().__init__(base_dir or _default_base_dir(), inst_data=inst_data)
        os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", str(EVENT_BATCH_SIZE))

    @classmethod
    def config_type(cls) -> dict:
        return {"base_dir": Field(StringSource, is_required=False)}

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: dict
    ) -> BatchingSqliteEventLogStorage:
        return cls(inst_data=inst_data, **config_value)

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        """Asset events of one run go in together; anything else is stored as Dagster would."""
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
        statements = [self.prepare_insert_event(event) for event in events]
        with self.run_connection(events[0].run_id) as connection:
            for statement in statements:
                connection.execute(statement)
        with self.index_transaction() as connection:
            event_ids = []
            for statement in statements:
                with db_result(connection, statement) as result:
                    event_ids.append(result.inserted_primary_key[0])
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
