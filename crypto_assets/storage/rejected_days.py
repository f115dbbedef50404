"""Days that failed a blocking check when they were written: the mark in their Parquet footer
and the error every read of them raises, so no later load takes them onward."""

import json

import dagster as dg
import pyarrow as pa

REJECTED_METADATA_KEY = b"crypto_assets.rejected"
"""Footer key-value metadata of a day that failed a blocking check: JSON of the rules it broke."""


def rejection_mark(metadata: dict[bytes, bytes] | None) -> dict | None:
    """The blocking checks a stored day failed when it was written, from its footer's
    key-value metadata; None for a day stored without a mark."""
    mark = (metadata or {}).get(REJECTED_METADATA_KEY)
    return json.loads(mark) if mark else None


def marked_rejected(table: pa.Table, failed: dict) -> pa.Table:
    """The day's table with its failed checks in the schema metadata, which Arrow writes into
    the Parquet footer: the mark is in the same object as the rows, so it is written atomically
    with them."""
    return table.replace_schema_metadata(
        {**(table.schema.metadata or {}), REJECTED_METADATA_KEY: json.dumps(failed).encode()}
    )


class StoredDayRejected(dg.Failure):
    """Stored partitions that failed a blocking check when they were written: kept in the zone
    for inspection, never read onward (into the warehouse)."""


def _describe_failed(failed: dict) -> str:
    """'rule (2 candles, first at 2024-01-02T01:40:00Z), ...' from a rejection mark."""
    return ", ".join(
        f"{name} ({found['offending_rows']}"
        f" {'candle' if found['offending_rows'] == 1 else 'candles'}, first at"
        f" {(found['first_offending_open_times'] or ['?'])[0]})"
        for name, found in failed.items()
    )


def rejected_days_error(asset: str, rejected: list[tuple[str, str, dict]]) -> StoredDayRejected:
    """One error naming every rejected day of a read (day, object URI, failed checks), and how
    to clear it."""
    days = [partition_key for partition_key, _, _ in rejected]
    details = "; ".join(
        f"{partition_key} at {uri} failed {_describe_failed(failed)}"
        for partition_key, uri, failed in rejected
    )
    return StoredDayRejected(
        description=(
            f"{asset} for {', '.join(days)} failed a blocking check when written, so"
            f" {'it is' if len(days) == 1 else 'they are'} not read onward and nothing was"
            f" loaded: {details}. Correct the source and materialize {asset} for"
            f" {'that day' if len(days) == 1 else 'those days'} again."
        ),
        metadata={"rejected_days": dg.MetadataValue.json(days)},
    )
