"""Test-only: holds the DuckDB warehouse load open just before its commit, so a test can kill
the run inside the transaction at a known point instead of sleeping and hoping.

A process started with this folder first on ``PYTHONPATH`` and ``COMMIT_PAUSE_WHEN`` set imports
it at start-up (Python's ``sitecustomize`` hook). Every warehouse connection then asks
``COMMIT_PAUSE_WHEN`` (SQL giving one boolean) inside its transaction before each commit; when
it is true, the process writes its PID to ``COMMIT_PAUSE_MARKER`` and waits to be killed. The
load's own statements are untouched: only the commit is held back.
"""

import os
import time
from pathlib import Path
from typing import Any

PAUSE_SECONDS = 300


class _PausingConnection:
    """A DuckDB connection whose commit waits, once the condition holds, for the kill."""

    def __init__(self, connection: Any, condition: str, marker: Path) -> None:
        self._connection = connection
        self._condition = condition
        self._marker = marker

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)

    def commit(self) -> Any:
        if self._connection.execute(self._condition).fetchone()[0]:
            written = self._marker.with_name(f".{self._marker.name}")
            written.write_text(str(os.getpid()))
            written.replace(self._marker)  # whole when it appears: the test kills on sight
            time.sleep(PAUSE_SECONDS)
            raise RuntimeError(f"nobody killed process {os.getpid()} paused before its commit")
        return self._connection.commit()


def _install(condition: str, marker: Path) -> None:
    from crypto_assets.storage import warehouse_duckdb

    connect = warehouse_duckdb.connect_waiting_for_lock

    def connect_pausing(*args: Any, **kwargs: Any) -> _PausingConnection:
        return _PausingConnection(connect(*args, **kwargs), condition, marker)

    warehouse_duckdb.connect_waiting_for_lock = connect_pausing


if os.environ.get("COMMIT_PAUSE_WHEN"):
    _install(os.environ["COMMIT_PAUSE_WHEN"], Path(os.environ["COMMIT_PAUSE_MARKER"]))
