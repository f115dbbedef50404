"""Deleting a run, or only its logs, from Dagster's own storage, files included.

``DagsterInstance.delete_run`` removes a run's rows; a run also has a folder of captured logs, and
on Dagster's default SQLite instance an event database file of its own (about 256 KB, left behind
empty). Removing those is what actually frees the disk.
"""

from pathlib import Path

import dagster as dg

# SqliteEventLogStorage has no public export; isinstance is how we know runs have their own file.
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

LOGS_PRUNED_TAG = "crypto_assets/logs"
"""Set to ``pruned`` on a run whose events and captured logs were deleted; the UI shows why."""


def delete_run_everywhere(instance: dg.DagsterInstance, run_id: str) -> None:
    """Deletes the run, its events, its per-run SQLite file and its captured logs."""
    instance.delete_run(run_id)
    storage = instance.event_log_storage
    if isinstance(storage, SqliteEventLogStorage):
        Path(storage.path_for_shard(run_id)).unlink(missing_ok=True)
    instance.compute_log_manager.delete_logs(prefix=[run_id])


def delete_run_logs(instance: dg.DagsterInstance, run_id: str) -> None:
    """Deletes the run's events and captured logs; the run stays in the run list with its status,
    times and tags, and a tag that says its logs were pruned."""
    instance.event_log_storage.delete_events(run_id)
    instance.compute_log_manager.delete_logs(prefix=[run_id])
    instance.add_run_tags(run_id, {LOGS_PRUNED_TAG: "pruned"})
