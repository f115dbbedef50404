"""Overlapping a day stream's I/O with its compute: read ahead, write behind.

A range run handles one day at a time: fetch or read it, transform it, encode and store it.
Network waits, Parquet decoding and encoding, file or S3 writes and DuckDB's inserts release
the GIL, so a thread doing them runs beside the main thread's pandas work instead of after it.
Both helpers keep days in order, hold only a few days in memory, and raise a failure where it
happened.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import TypeVar

Item = TypeVar("Item")

AHEAD_DAYS = 4
_DONE = object()


def read_ahead(items: Iterator[Item], depth: int = AHEAD_DAYS) -> Iterator[Item]:
    """The same items, produced up to ``depth`` ahead in a thread.

    An error in the thread is raised here, after the items before it; stopping early stops the
    thread.
    """
    pending: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(item: object) -> bool:
        """Queues item unless the consumer has stopped; False once it has."""
        while not stop.is_set():
            try:
                pending.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not offer(item):
                    return
            offer(_DONE)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            offer(exc)

    producer = threading.Thread(target=produce, name="read-ahead", daemon=True)
    producer.start()
    try:
        while True:
            item = pending.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        producer.join(timeout=5)


class WriteBehind:
    """Runs writes in order in one thread, at most ``depth`` submitted and not yet done.

    Used as a context manager, it ends as the same loop without the thread would: every write
    submitted before an error in the loop is finished, then the error is raised; a failed write
    is raised, and the writes queued behind it are dropped.
    """

    def __init__(self, depth: int = AHEAD_DAYS) -> None:
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
