"""The Parquet zone: the bytes pandas would write, a killed writer's leftovers, and days read
back in batches."""

import io
import os
import subprocess
import sys
from datetime import datetime, timezone

import dagster as dg
import pandas as pd
import pytest

from crypto_assets.klines.frames import DayBatch, DayFrames
from crypto_assets.klines.transform import clean_frame, raw_frame
from crypto_assets.storage.parquet import (
    DICTIONARY_COLUMNS,
    LocalKlinesIOManager,
    StoredDays,
    frame_from_parquet,
    frame_to_parquet,
    partition_object_key,
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


def test_stored_days_come_back_stacked_and_equal_to_each_day_read_alone(tmp_path):
    zone = LocalKlinesIOManager(base_dir=str(tmp_path))
    keys = ["2024-01-24", "2024-01-25", "2024-01-31", "2024-02-01", "2024-02-02", "2024-02-03"]
    for seed, key in enumerate(keys):
        rows = synthetic_days(key, 1, seed=seed)
        if key == "2024-02-03":  # Binance left a trade count out: this day's column is float
            rows[0][8] = None
        raw = raw_frame(rows, "BTCUSDT", "1m", FETCHED_AT)
        raw.attrs.update({"source": "rest", "source_url": f"https://x/{key}", "sha256": ""})
        zone._put(partition_object_key("BTCUSDT", "1m", key), frame_to_parquet(raw))
    stored = StoredDays(lambda: zone._read_days("raw_klines", "BTCUSDT", "1m", keys))

    batches = list(stored.batches())

    # Stacked by runs of 8 days within a month (1-8, ..., 25-31); February's days differ in a
    # column's type, so they are not stacked.
    assert [batch.keys for batch in batches] == [
        ["2024-01-24"],
        ["2024-01-25", "2024-01-31"],
        ["2024-02-01"],
        ["2024-02-02"],
        ["2024-02-03"],
    ]
    assert batches[1].frame.attrs == {}  # one day's provenance does not describe two
    days = [day for batch in batches for day in batch.days()]
    assert [key for key, _ in days] == keys
    for key, frame in days:
        alone = frame_from_parquet(zone._get(partition_object_key("BTCUSDT", "1m", key)))
        pd.testing.assert_frame_equal(frame, alone, obj=key)
    assert stored.row_counts() == dict.fromkeys(keys, 1440)


def test_a_batch_of_days_is_stored_as_each_day_alone_would_be(tmp_path):
    zone = LocalKlinesIOManager(base_dir=str(tmp_path))
    keys = ["2024-01-01", "2024-01-02", "2024-01-03"]
    days = {
        key: clean_frame(raw_frame(synthetic_days(key, 1, seed=seed), "BTCUSDT", "1m", FETCHED_AT))
        for seed, key in enumerate(keys)
    }
    days["2024-01-02"] = days["2024-01-02"].iloc[:0]  # a day Binance had no candles for
    frames = list(days.values())
    batch = DayBatch(keys, pd.concat(frames, ignore_index=True), [len(frame) for frame in frames])

    zone._put_batch("BTCUSDT", "1m", batch)

    for key, frame in days.items():
        stored = zone._get(partition_object_key("BTCUSDT", "1m", key))
        assert stored == frame_to_parquet(frame.reset_index(drop=True)), key


def test_a_day_outside_the_runs_partitions_is_refused_and_a_missing_day_named(tmp_path):
    zone = LocalKlinesIOManager(base_dir=str(tmp_path))
    day = clean_frame(raw_frame(synthetic_days("2024-01-02", 1), "BTCUSDT", "1m", FETCHED_AT))
    context = dg.build_output_context(
        asset_key=dg.AssetKey("clean_klines"),
        partition_key="2024-01-01",
        asset_partitions_def=dg.DailyPartitionsDefinition(start_date="2024-01-01"),
        definition_metadata={"symbol": "BTCUSDT", "interval": "1m"},
    )
    with pytest.raises(dg.DagsterInvariantViolationError, match="produced day 2024-01-02, which"):
        zone.handle_output(context, DayFrames([("2024-01-02", day)]))
    with pytest.raises(
        dg.DagsterInvariantViolationError, match=r"no frame for days \['2024-01-01'"
    ):
        zone.handle_output(context, DayFrames([]))
    assert not list(tmp_path.rglob("*.parquet"))
