"""Deleting a run, or only its logs, from Dagster's own storage, files included.

``DagsterInstance.delete_run`` removes a run's rows and events, but not its check executions
(about ten rows of 2 KB a refresh run, in SQLite and Postgres alike), its folder of captured logs,
or on Dagster's default SQLite instance its event database file (about 256 KB, left behind
empty). Removing those is what actually frees the disk.
"""

from pathlib import Path

import dagster as dg

# No public API deletes check executions or names a run's event file: these storage classes and
# tables are how to reach them.
import sqlalchemy as db
from dagster._core.events import ASSET_CHECK_EVENTS, ASSET_EVENTS
from dagster._core.storage.event_log.schema import (
    AssetCheckExecutionsTable,
    SqlEventLogStorageTable,
)
from dagster._core.storage.event_log.sql_event_log import SqlEventLogStorage
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

LOGS_PRUNED_TAG = "crypto_assets/logs"
"""Set to ``pruned`` on a run whose events and captured logs were deleted; the UI shows why."""

LINEAGE_EVENT_TYPES = sorted(event_type.value for event_type in ASSET_EVENTS | ASSET_CHECK_EVENTS)
"""The events a run keeps when only its logs are pruned: what it wrote and what its checks said."""


def delete_run_everywhere(instance: dg.DagsterInstance, run_id: str) -> None:
    """Deletes the run, its events and check executions, its per-run SQLite file and its
    captured logs."""
    instance.delete_run(run_id)
    _delete_check_executions(instance, run_id)
    storage = instance.event_log_storage
    if isinstance(storage, SqliteEventLogStorage):
        Path(storage.path_for_shard(run_id)).unlink(missing_ok=True)
    instance.compute_log_manager.delete_logs(prefix=[run_id])


def delete_run_logs(instance: dg.DagsterInstance, run_id: str) -> None:
    """Deletes the run's events and captured logs; the run stays in the run list with its status,
    times and tags, and a tag that says its logs were pruned."""
    instance.event_log_storage.delete_events(run_id)
    _delete_check_executions(instance, run_id)
    instance.compute_log_manager.delete_logs(prefix=[run_id])
    instance.add_run_tags(run_id, {LOGS_PRUNED_TAG: "pruned"})


def delete_run_logs_keeping_lineage(instance: dg.DagsterInstance, run_id: str) -> None:
    """Deletes the run's captured output and every event but its asset events
    (materializations, observations, planned materializations, check results), which Dagster
    reads for each partition's status and last materialization: a day's final run may be the
    only record that the day was written. The run stays listed, tagged as pruned."""
    storage = instance.event_log_storage
    if isinstance(storage, SqlEventLogStorage):
        with storage.run_connection(run_id) as connection:
            connection.execute(
                SqlEventLogStorageTable.delete().where(
                    SqlEventLogStorageTable.c.run_id == run_id,
                    db.or_(
                        SqlEventLogStorageTable.c.dagster_event_type.is_(None),
                        SqlEventLogStorageTable.c.dagster_event_type.not_in(LINEAGE_EVENT_TYPES),
                    ),
                )
            )
    instance.compute_log_manager.delete_logs(prefix=[run_id])
    instance.add_run_tags(run_id, {LOGS_PRUNED_TAG: "pruned"})


def _delete_check_executions(instance: dg.DagsterInstance, run_id: str) -> None:
    storage = instance.event_log_storage
    if isinstance(storage, SqlEventLogStorage):
        with storage.index_connection() as connection:
            connection.execute(
                AssetCheckExecutionsTable.delete().where(
                    AssetCheckExecutionsTable.c.run_id == run_id
                )
            )
