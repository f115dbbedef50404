"""The Parquet zone's writer: the bytes pandas would write, and a killed writer's leftovers."""

import io
import os
import subprocess
import sys
from datetime import datetime, timezone

import pandas as pd

from crypto_assets.klines.transform import clean_frame, raw_frame
from crypto_assets.storage.parquet import (
    DICTIONARY_COLUMNS,
    LocalKlinesIOManager,
    frame_from_parquet,
    frame_to_parquet,
)
from crypto_assets_tests.conftest import synthetic_days

FETCHED_AT = datetime(2024, 1, 3, tzinfo=timezone.utc)


def pandas_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(
        buffer,
        index=False,
        engine="pyarrow",
        compression="zstd",
        use_dictionary=[column for column in DICTIONARY_COLUMNS if column in frame.columns],
    )
    return buffer.getvalue()


def test_days_are_written_as_pandas_writes_them_with_their_provenance():
    raw = raw_frame(synthetic_days("2024-01-01", 1), "BTCUSDT", "1m", FETCHED_AT)
    raw.attrs.update({"source": "archive", "source_url": "https://x/y.zip", "sha256": "ab12"})
    for frame in (raw, clean_frame(raw)):
        assert frame_to_parquet(frame) == pandas_bytes(frame)
    stored = frame_to_parquet(raw)
    assert frame_from_parquet(stored).attrs == raw.attrs
    assert pd.read_parquet(io.BytesIO(stored)).attrs == raw.attrs
    pd.testing.assert_frame_equal(frame_from_parquet(stored), raw)


def test_a_dead_writers_temporary_goes_before_the_next_write_and_a_live_ones_stays(tmp_path):
    folder = tmp_path / "klines" / "symbol=BTCUSDT" / "interval=1m"
    folder.mkdir(parents=True)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    )
    dead_pid = int(dead.stdout)
    orphan = folder / f".date=2024-01-01.parquet.{dead_pid}.abc123"
    live = folder / f".date=2024-01-02.parquet.{os.getpid()}.def456"
    for temporary in (orphan, live):
        temporary.write_bytes(b"PAR1")

    LocalKlinesIOManager(base_dir=str(tmp_path))._before_writing(
        "klines/symbol=BTCUSDT/interval=1m/"
    )

    assert not orphan.exists()
    assert live.exists()
