"""Overlapping a day stream's writes with its compute: write behind.

A range run handles one day at a time: fetch or read it, transform it, encode and store it.
Parquet encoding, file or S3 writes and DuckDB's inserts mostly release the GIL, so a thread
doing them runs beside the main thread's fetching and pandas work instead of after it. One
writer thread is enough: a thread reading ahead as well measured slower, since the GIL, not
waiting, is then the limit.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType

PENDING_WRITES = 4


class WriteBehind:
    """Runs writes in order in one thread, at most ``depth`` submitted and not yet done.

    Used as a context manager, it ends as the same loop without the thread would: every write
    submitted before an error in the loop is finished, then the error is raised; a failed write
    is raised, and the writes queued behind it are dropped.
    """

    def __init__(self, depth: int = PENDING_WRITES) -> None:
        self._depth = depth
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="write-behind")
        self._pending: deque[Future] = deque()
        self._failed = threading.Event()

    def submit(self, write: Callable[..., object], *args: object) -> None:
        """Queues write(*args); blocks while ``depth`` writes are pending, and raises the
        failure of any write that has finished with one."""
        self._pending.append(self._pool.submit(self._unless_failed, write, *args))
        while self._pending and (len(self._pending) > self._depth or self._pending[0].done()):
            self._pending.popleft().result()

    def _unless_failed(self, write: Callable[..., object], *args: object) -> None:
        """Runs one write, or none once a write has failed: the writes queued behind a failed
        one are dropped, whatever the submitting thread has seen so far."""
        if self._failed.is_set():
            return
        try:
            write(*args)
        except BaseException:
            self._failed.set()
            raise

    def __enter__(self) -> WriteBehind:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            while self._pending:
                failure = self._pending.popleft().exception()
                if failure is None:
                    continue
                if exc is None:
                    raise failure
                exc.add_note(f"A write behind it failed too: {failure!r}")
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)
