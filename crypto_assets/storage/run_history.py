"""Deleting a run from Dagster's own storage, files included.

``DagsterInstance.delete_run`` removes a run's rows, but on the local SQLite instance each run
also has its own event database file (about 256 KB, left behind empty) and a folder of captured
logs. Removing both is what actually frees the disk.
"""

from pathlib import Path

import dagster as dg

# SqliteEventLogStorage has no public export; isinstance is how we know runs have their own file.
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage


def delete_run_everywhere(instance: dg.DagsterInstance, run_id: str) -> None:
    """Deletes the run, its events, its per-run SQLite file and its captured logs."""
    instance.delete_run(run_id)
    storage = instance.event_log_storage
    if isinstance(storage, SqliteEventLogStorage):
        Path(storage.path_for_shard(run_id)).unlink(missing_ok=True)
    instance.compute_log_manager.delete_logs(prefix=[run_id])
