"""The Parquet IO manager: one object per daily partition, in a local folder or an S3 bucket
(the S3 flavour lives in parquet_s3.py, so local runs never import boto3).

Both variants share the Hive-style layout
``klines/symbol=BTCUSDT/interval=1m/date=2024-01-01.parquet`` and differ only in where bytes go.
Values travel as ``DayFrames`` (one frame per partition day, possibly lazy), so a range run
writes one day at a time and reads days back a few at a time. Every object is written whole: a
temporary file renamed into place locally, a single PUT on S3, so no reader ever sees half a day.
A day that failed a blocking check is written with a mark in its Parquet footer (the
``crypto_assets.rejected`` key), so it is kept for inspection but no later load takes it: reads
refuse marked days, and the next good write of that day replaces the object and its mark.
"""

import itertools
import json
import os
import tempfile
from abc import abstractmethod
from collections.abc import Callable, Iterator
from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import Field

from crypto_assets.klines.frames import DayBatch, DayFrames
from crypto_assets.klines.write_behind import WriteBehind
from crypto_assets.storage.rejected_days import marked_rejected, rejected_days_error, rejection_mark


def partition_folder_key(symbol: str, interval: str) -> str:
    return f"klines/symbol={symbol}/interval={interval}/"


def partition_object_key(symbol: str, interval: str, partition_key: str) -> str:
    return f"{partition_folder_key(symbol, interval)}date={partition_key}.parquet"


def frame_from_parquet(data: bytes) -> pd.DataFrame:
    """One stored day as pandas, with its attrs."""
    return _table_to_frame(_read_table(pq.ParquetFile(pa.BufferReader(data))))


def _read_table(stored: pq.ParquetFile) -> pa.Table:
    """Arrow's file reader directly (pandas' read_parquet and pyarrow's read_table add a dataset
    scan per call). One day is too small for Arrow's thread pool to pay off on a busy 2-core
    machine."""
    return stored.read(use_threads=False)


def _table_to_frame(table: pa.Table) -> pd.DataFrame:
    """Text kept as Arrow strings, as raw_klines made it, rather than copied into Python objects."""
    return table.to_pandas(types_mapper=_ARROW_STRINGS.get, use_threads=False)


_ARROW_STRINGS = {
    pa.string(): pd.StringDtype("pyarrow"),
    pa.large_string(): pd.StringDtype("pyarrow"),
}


BATCH_DAYS = 8
"""Days stacked into one batch when a zone is read back, never across a month (the warehouse
commits a month at a time). Cleaning a stored year took 1.33 s a day at a time, 1.18 s in
batches of 8 days and 1.34 s in whole months, whose peak memory was 75 MiB above the start
against 43 MiB for 8 days."""


def stacked_batches(days: Iterator[tuple[str, pq.ParquetFile]]) -> Iterator[DayBatch]:
    """Stored days stacked up to ``BATCH_DAYS`` at a time: one conversion to pandas per batch
    instead of per day, the one that downstream steps vectorize over."""
    for _, group in itertools.groupby(days, key=_batch_of):
        keys, tables = [], []
        for partition_key, stored in group:
            keys.append(partition_key)
            tables.append(_read_table(stored))
        schema = tables[0].schema
        if any(not table.schema.equals(schema) for table in tables[1:]):
            # Days whose column types differ (written by another version, a column all null)
            # stay apart, each converted as it would be alone.
            for partition_key, table in zip(keys, tables, strict=True):
                yield DayBatch.one_day(partition_key, _table_to_frame(table))
            continue
        stacked = _table_to_frame(pa.concat_tables(tables))
        if len(tables) > 1:
            stacked.attrs = {}  # one day's (where raw_klines fetched it) does not describe all
        yield DayBatch(keys, stacked, [table.num_rows for table in tables])


def _batch_of(day: tuple[str, object]) -> tuple[str, int]:
    """The batch a day 'YYYY-MM-DD' falls in: its month, and which run of BATCH_DAYS days."""
    partition_key = day[0]
    return partition_key[:7], (int(partition_key[8:]) - 1) // BATCH_DAYS


class StoredDays(DayFrames):
    """Days read back from a zone in batches of up to ``BATCH_DAYS``; row counts from Parquet
    footers only.

    Read in the consuming thread: with the writes behind it in a thread, reading ahead in a
    third one measured no faster (the GIL is the limit)."""

    def __init__(self, read_days: Callable[[], Iterator[tuple[str, pq.ParquetFile]]]) -> None:
        super().__init__(batches=stacked_batches(read_days()))
        self._read_days = read_days

    def row_counts(self) -> dict[str, int]:
        return {
            partition_key: stored.metadata.num_rows for partition_key, stored in self._read_days()
        }


DICTIONARY_COLUMNS = ["symbol", "interval"]
"""Only the repeated labels are dictionary-encoded: prices and times hardly repeat, and encoding
them cost a third of each write and made the files larger."""


def frame_to_parquet(frame: pd.DataFrame) -> bytes:
    """The bytes pandas' ``to_parquet`` would write, through Arrow's writer directly: pandas'
    wrapper added a third to every day's write."""
    return table_to_parquet(frame_to_table(frame))


def frame_to_table(frame: pd.DataFrame) -> pa.Table:
    """The frame as Arrow, with pandas' metadata and attrs, as ``to_parquet`` converts it."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    if frame.attrs:  # as pandas keeps them, so pandas' own reader restores them too
        table = table.replace_schema_metadata(
            {**table.schema.metadata, b"PANDAS_ATTRS": json.dumps(frame.attrs).encode()}
        )
    return table


def table_to_parquet(table: pa.Table) -> bytes:
    """One stored object's bytes: zstd, only the repeated labels dictionary-encoded."""
    buffer = pa.BufferOutputStream()
    pq.write_table(
        table,
        buffer,
        compression="zstd",
        use_dictionary=[column for column in DICTIONARY_COLUMNS if column in table.column_names],
    )
    return buffer.getvalue().to_pybytes()


class DayProvenance:
    """Where a run's days came from (``frame.attrs`` set by raw_klines), as output metadata.

    One day shows its source, URL and SHA-256; a range shows how many days came from each
    source and the first days that did not come from the archive. Kept short: Dagster copies
    output metadata into every partition's materialization event.
    """

    SHOWN_DAYS = 10

    def __init__(self) -> None:
        self.days: list[tuple[str, dict]] = []

    def add(self, partition_key: str, attrs: dict) -> None:
        if "source" in attrs:
            self.days.append((partition_key, attrs))

    def metadata(self) -> dict[str, object]:
        if not self.days:
            return {}
        if len(self.days) == 1:
            attrs = self.days[0][1]
            return {
                "source": attrs["source"],
                "source_url": dg.MetadataValue.url(attrs["source_url"])
                if attrs.get("source_url")
                else "",
                "sha256": attrs.get("sha256", ""),
            }
        counts: dict[str, int] = {}
        for _, attrs in self.days:
            counts[attrs["source"]] = counts.get(attrs["source"], 0) + 1
        not_archived = [day for day, attrs in self.days if attrs["source"] != "archive"]
        return {
            "days_by_source": dg.MetadataValue.json(counts),
            "days_not_from_archive": dg.MetadataValue.json(not_archived[: self.SHOWN_DAYS]),
        }


class StoredDayMissing(FileNotFoundError):
    """A partition was asked for that no run has written yet."""


class StoredDayUnreadable(dg.Failure):
    """A stored partition exists but does not read as Parquet (truncated, overwritten)."""


class KlinesParquetIOManager(dg.ConfigurableIOManager):
    """Writes and reads one Parquet object per daily partition of a klines asset.

    Symbol and interval come from the asset's definition metadata, so the same IO manager
    serves any symbol without configuration of its own.
    """

    @abstractmethod
    def _put(self, key: str, data: bytes) -> str:
        """Stores data whole under key; returns the object's URI."""

    @abstractmethod
    def _get(self, key: str) -> bytes:
        """Returns the object's bytes; raises StoredDayMissing when it does not exist."""

    @abstractmethod
    def uri(self, key: str) -> str: ...

    def _before_writing(self, folder_key: str) -> None:
        """Called once per output before its days are put under folder_key (a key prefix)."""

    def _before_reading(
        self, asset: str, symbol: str, interval: str, partition_keys: list[str]
    ) -> None:
        """Called once per input before any of its days is read. Rejected days are refused as
        they are read in any case (``_read_days``); a flavour that can read footers cheaply
        refuses them here, before anything is handed on."""

    def handle_output(self, context: dg.OutputContext, obj: DayFrames) -> None:
        symbol, interval = _symbol_and_interval(context.definition_metadata)
        expected = list(context.asset_partition_keys)
        expected_keys = set(expected)  # looked up per day: a list scan grew with the square
        written: list[str] = []
        rejected: list[str] = []
        rows = 0
        first_open_time = last_open_time = None
        provenance = DayProvenance()
        self._before_writing(partition_folder_key(symbol, interval))
        with WriteBehind() as writes:
            for batch in obj.batches():
                unexpected = [key for key in batch.keys if key not in expected_keys]
                if unexpected:
                    raise dg.DagsterInvariantViolationError(
                        f"{context.asset_key.to_user_string()} produced day {unexpected[0]},"
                        f" which is not among this run's partitions {expected[0]}..{expected[-1]}."
                    )
                writes.submit(self._put_batch, symbol, interval, batch)
                written.extend(batch.keys)
                rejected.extend(batch.rejections)
                for partition_key in batch.keys:
                    provenance.add(partition_key, batch.frame.attrs)
                rows += len(batch.frame)
                if len(batch.frame):
                    first_open_time = first_open_time or str(batch.frame["open_time"].iloc[0])
                    last_open_time = str(batch.frame["open_time"].iloc[-1])
        missing = sorted(expected_keys - set(written))
        if missing:
            raise dg.DagsterInvariantViolationError(
                f"{context.asset_key.to_user_string()} produced no frame for days {missing}."
            )
        context.add_output_metadata(
            {
                "dagster/row_count": rows,
                "days": len(written),
                "first_open_time": first_open_time or "",
                "last_open_time": last_open_time or "",
                "location": dg.MetadataValue.path(
                    self.uri(partition_object_key(symbol, interval, written[0]))
                    if len(written) == 1
                    else self.uri(partition_folder_key(symbol, interval))
                ),
                **provenance.metadata(),
                **(
                    {"rejected_days": dg.MetadataValue.json(rejected[: DayProvenance.SHOWN_DAYS])}
                    if rejected
                    else {}
                ),
            }
        )

    def _put_batch(self, symbol: str, interval: str, batch: DayBatch) -> None:
        """Encodes and stores each day of a batch, converted to Arrow once: runs in the
        write-behind thread, beside the next batch's compute. Each day's bytes are those
        ``frame_to_parquet`` gives for that day alone, marked if it failed a blocking check."""
        table = frame_to_table(batch.frame)
        offset = 0
        for partition_key, length in zip(batch.keys, batch.lengths, strict=True):
            day = table.slice(offset, length)
            if partition_key in batch.rejections:
                day = marked_rejected(day, batch.rejections[partition_key])
            self._put(partition_object_key(symbol, interval, partition_key), table_to_parquet(day))
            offset += length

    def load_input(self, context: dg.InputContext) -> DayFrames:
        upstream = context.upstream_output
        symbol, interval = _symbol_and_interval(upstream.definition_metadata if upstream else {})
        partition_keys = list(context.asset_partition_keys)
        asset = context.asset_key.to_user_string()
        self._before_reading(asset, symbol, interval, partition_keys)
        return StoredDays(lambda: self._read_days(asset, symbol, interval, partition_keys))

    def _refuse_rejected_days(
        self, asset: str, symbol: str, interval: str, partition_keys: list[str]
    ) -> None:
        """Reads each day's footer and fails naming every day marked rejected (or the first
        missing or unreadable one)."""
        rejected = []
        for partition_key in partition_keys:
            key = partition_object_key(symbol, interval, partition_key)
            mark = rejection_mark(self._footer(asset, key, partition_key).metadata)
            if mark:
                rejected.append((partition_key, self.uri(key), mark))
        if rejected:
            raise rejected_days_error(asset, rejected)

    def _read_footer(self, key: str) -> pq.FileMetaData:
        """The stored object's Parquet footer; a flavour that can read only the footer does."""
        return pq.ParquetFile(pa.BufferReader(self._get(key))).metadata

    def _footer(self, asset: str, key: str, partition_key: str) -> pq.FileMetaData:
        try:
            return self._read_footer(key)
        except StoredDayMissing as exc:
            raise self._missing(asset, key, partition_key) from exc
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise self._unreadable(asset, key, partition_key, exc) from exc

    def _missing(self, asset: str, key: str, partition_key: str) -> StoredDayMissing:
        return StoredDayMissing(
            f"{asset} has no data for {partition_key} at {self.uri(key)}:"
            " materialize that partition first."
        )

    def _unreadable(
        self, asset: str, key: str, partition_key: str, exc: Exception
    ) -> StoredDayUnreadable:
        return StoredDayUnreadable(
            f"{asset} for {partition_key} at {self.uri(key)} is not readable Parquet"
            f" ({type(exc).__name__}: {exc}). Materialize {asset} for {partition_key}"
            " again to rewrite it."
        )

    def read_day(self, symbol: str, interval: str, partition_key: str) -> pd.DataFrame | None:
        """One stored day (with its attrs), or None when no run has written it."""
        try:
            return frame_from_parquet(
                self._get(partition_object_key(symbol, interval, partition_key))
            )
        except StoredDayMissing:
            return None

    def _read_days(
        self, asset: str, symbol: str, interval: str, partition_keys: list[str]
    ) -> Iterator[tuple[str, pq.ParquetFile]]:
        """Each day's stored file, its footer read: a missing, unreadable or rejected day is
        named. At the first rejected day the rest of the range's footers are read too, so the
        error names every rejected day, not only the first."""
        for index, partition_key in enumerate(partition_keys):
            key = partition_object_key(symbol, interval, partition_key)
            try:
                data = self._get(key)
            except StoredDayMissing as exc:
                raise self._missing(asset, key, partition_key) from exc
            try:
                stored = pq.ParquetFile(pa.BufferReader(data))
            except (pa.ArrowException, OSError, ValueError) as exc:
                raise self._unreadable(asset, key, partition_key, exc) from exc
            mark = rejection_mark(stored.metadata.metadata)
            if mark:
                self._refuse_rejected_days(asset, symbol, interval, partition_keys[index:])
                raise rejected_days_error(asset, [(partition_key, self.uri(key), mark)])
            yield partition_key, stored


def _symbol_and_interval(metadata: dict | None) -> tuple[str, str]:
    metadata = metadata or {}
    try:
        return str(metadata["symbol"]), str(metadata["interval"])
    except KeyError as exc:
        raise dg.DagsterInvariantViolationError(
            f"A klines asset needs 'symbol' and 'interval' in its metadata; missing {exc}."
        ) from exc


class LocalKlinesIOManager(KlinesParquetIOManager):
    """Parquet files under a local folder: the zero-setup default."""

    base_dir: str = Field(description="Folder that holds this zone's klines/ tree.")

    def uri(self, key: str) -> str:
        return str(Path(self.base_dir, key))

    def _before_reading(
        self, asset: str, symbol: str, interval: str, partition_keys: list[str]
    ) -> None:
        """Refuses rejected days before any day is read: a year's footers took 0.11 to 0.19 s
        here, against about 1 s to read its days, and without it a range of over a month that
        reached a rejected day would have loaded the months before it (DuckDB commits such a
        range a month at a time)."""
        self._refuse_rejected_days(asset, symbol, interval, partition_keys)

    def _before_writing(self, folder_key: str) -> None:
        """Deletes the temporaries killed writers left in the folder: once per output, since
        listing a folder of years of days before every day's write grew with the square."""
        folder = Path(self.base_dir, folder_key)
        if folder.is_dir():
            _remove_orphaned_temporaries(folder)

    def _put(self, key: str, data: bytes) -> str:
        target = Path(self.base_dir, key)
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(
            dir=target.parent, prefix=f".{target.name}.{os.getpid()}."
        )
        try:
            with os.fdopen(handle, "wb") as stream:
                stream.write(data)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return str(target)

    def _get(self, key: str) -> bytes:
        try:
            return Path(self.base_dir, key).read_bytes()
        except FileNotFoundError as exc:
            raise StoredDayMissing(key) from exc

    def _read_footer(self, key: str) -> pq.FileMetaData:
        """Only the footer's bytes, not the day's rows."""
        try:
            return pq.read_metadata(Path(self.base_dir, key))
        except FileNotFoundError as exc:
            raise StoredDayMissing(key) from exc


def _remove_orphaned_temporaries(folder: Path) -> None:
    """Deletes temporary files killed writers left in folder (``.<target>.<pid>.<random>``)."""
    for temporary in folder.glob(".*.parquet.*"):
        pid = temporary.name.rsplit(".parquet.", 1)[1].split(".", 1)[0]
        if pid.isdigit() and not _process_alive(int(pid)):
            temporary.unlink(missing_ok=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
