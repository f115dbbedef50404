"""Write-behind: order, bounded memory, and failures raised where they happened."""

import threading

import pytest

from crypto_assets.klines.write_behind import WriteBehind


def test_write_behind_runs_every_write_in_order_before_the_block_ends():
    written = []
    with WriteBehind(depth=2) as writes:
        for day in range(20):
            writes.submit(written.append, day)
    assert written == list(range(20))


def test_a_failed_write_is_raised_and_no_write_after_it_runs():
    written = []

    def write(day: int) -> None:
        if day == 3:
            raise OSError(f"disk full writing day {day}")
        written.append(day)

    with pytest.raises(OSError, match="day 3"), WriteBehind(depth=4) as writes:
        for day in range(20):
            writes.submit(write, day)
    assert written == [0, 1, 2]


def test_writes_queued_behind_a_failed_one_are_dropped():
    release = threading.Event()
    written = []

    def write(day: int) -> None:
        if day == 0:
            release.wait(timeout=5)
            raise OSError("disk full writing day 0")
        written.append(day)

    with pytest.raises(OSError, match="day 0"), WriteBehind(depth=4) as writes:
        for day in range(4):
            writes.submit(write, day)  # all four queued before day 0 fails
        release.set()
    assert written == []


def test_an_error_in_the_producer_raises_after_the_writes_submitted_before_it():
    release = threading.Event()
    written = []

    def write(day: int) -> None:
        if day == 0:
            release.wait(timeout=5)
        written.append(day)

    with pytest.raises(ValueError, match="bad day"), WriteBehind(depth=4) as writes:
        for day in range(3):
            writes.submit(write, day)
        threading.Timer(0.2, release.set).start()
        raise ValueError("bad day")
    assert written == [0, 1, 2]  # as the loop without the thread would have left them


def test_a_write_failing_after_an_error_in_the_producer_is_noted_on_that_error():
    release = threading.Event()

    def write(day: int) -> None:
        release.wait(timeout=5)
        raise OSError(f"disk full writing day {day}")

    with pytest.raises(ValueError, match="bad day") as raised, WriteBehind(depth=4) as writes:
        writes.submit(write, 0)
        threading.Timer(0.2, release.set).start()
        raise ValueError("bad day")
    assert any("disk full writing day 0" in note for note in raised.value.__notes__)


def test_submitting_blocks_while_depth_writes_are_pending():
    release = threading.Event()
    submitted = []

    def producer() -> None:
        with WriteBehind(depth=2) as writes:
            for day in range(6):
                writes.submit(lambda: release.wait(timeout=5))
                submitted.append(day)

    thread = threading.Thread(target=producer)
    thread.start()
    thread.join(timeout=0.5)
    assert thread.is_alive()
    assert submitted == [0, 1]  # the third submit waits for the first write
    release.set()
    thread.join(timeout=5)
    assert submitted == list(range(6))
