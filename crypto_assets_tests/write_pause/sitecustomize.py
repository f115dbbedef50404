"""Test-only: holds a file write half done, so a test can kill a run mid-write at a known
point instead of polling and hoping the kill lands inside one.

A process started with this folder first on ``PYTHONPATH`` and ``WRITE_PAUSE_FOLDER`` set imports
it at start-up (Python's ``sitecustomize`` hook). It counts the files the process opens for
writing in that folder, under whatever name (a temporary or the final one); the first ``write``
to the ``WRITE_PAUSE_AT``-th writes half its bytes, flushes them, writes the process's PID to
``WRITE_PAUSE_MARKER`` and waits to be killed. Only writes made through Python's ``open`` (and
``os.fdopen``, ``Path.open``, which call it) are seen.
"""

import builtins
import io
import os
import threading
import time
from pathlib import Path
from typing import Any

PAUSE_SECONDS = 300


class _HalfWritingFile:
    """A file whose first write stores half its bytes, then waits for the kill."""

    def __init__(self, stream: Any, marker: Path) -> None:
        self._stream = stream
        self._marker = marker

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def __enter__(self) -> "_HalfWritingFile":
        return self

    def __exit__(self, *exc_info: Any) -> Any:
        return self._stream.__exit__(*exc_info)

    def write(self, data: Any) -> int:
        view = memoryview(data)
        self._stream.write(view[: len(view) // 2])
        self._stream.flush()
        written = self._marker.with_name(f".{self._marker.name}")
        written.write_text(str(os.getpid()))
        written.replace(self._marker)  # whole when it appears: the test kills on sight
        time.sleep(PAUSE_SECONDS)
        raise RuntimeError(f"nobody killed process {os.getpid()} paused inside a write")


def _install(folder: Path, pause_at: int, marker: Path) -> None:
    open_file = io.open
    opened = 0
    lock = threading.Lock()

    def opened_path(file: Any) -> Path | None:
        if isinstance(file, int):
            return Path(os.readlink(f"/proc/self/fd/{file}"))
        if isinstance(file, str | bytes | os.PathLike):
            return Path(os.fsdecode(file)).absolute()
        return None

    def open_pausing(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        nonlocal opened
        stream = open_file(file, mode, *args, **kwargs)
        if not any(flag in mode for flag in "wax+"):
            return stream
        path = opened_path(file)
        if path is None or path.parent.resolve() != folder:
            return stream
        with lock:
            opened += 1
            held = opened == pause_at
        return _HalfWritingFile(stream, marker) if held else stream

    io.open = builtins.open = open_pausing


if os.environ.get("WRITE_PAUSE_FOLDER"):
    _install(
        Path(os.environ["WRITE_PAUSE_FOLDER"]).resolve(),
        int(os.environ["WRITE_PAUSE_AT"]),
        Path(os.environ["WRITE_PAUSE_MARKER"]),
    )
