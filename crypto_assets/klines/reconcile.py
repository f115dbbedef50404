"""Pure comparisons behind the archive checks: archive candles against REST's, stored file
hashes against the ones the archive publishes now.

The archive has been re-published after fixes and has disagreed with REST, so a loaded day is
only as good as the last time someone compared it.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from crypto_assets.sources.binance_rest import KLINE_FIELDS

COMPARED_FIELDS = KLINE_FIELDS[1:]


def _iso(open_time_ms: int) -> str:
    return pd.Timestamp(open_time_ms, unit="ms", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def candle_differences(archived: pd.DataFrame, rest: pd.DataFrame, day: str) -> list[str]:
    """Every way the day's archive candles differ from REST's, one line per kind, naming the
    first open_time and both values (fields compared as the text Binance wrote)."""
    archive_side = archived.set_index("open_time")[list(COMPARED_FIELDS)].astype(str)
    rest_side = rest.set_index("open_time")[list(COMPARED_FIELDS)].astype(str)
    notes = []
    for only, where in (
        (archive_side.index.difference(rest_side.index), "only in the archive"),
        (rest_side.index.difference(archive_side.index), "only in REST"),
    ):
        if len(only):
            notes.append(f"{day}: {len(only)} candles {where}, first {_iso(int(only[0]))}")
    common = archive_side.index.intersection(rest_side.index)
    for field in COMPARED_FIELDS:
        archive_values, rest_values = archive_side.loc[common, field], rest_side.loc[common, field]
        differs = (archive_values != rest_values).to_numpy()
        if differs.any():
            first = common[differs.argmax()]
            notes.append(
                f"{day} {_iso(int(first))} {field}: archive {archive_values.loc[first]!r},"
                f" REST {rest_values.loc[first]!r} ({int(differs.sum())} candles differ)"
            )
    return notes


def changed_files(
    stored: Mapping[str, str], published: Mapping[str, str | None]
) -> dict[str, dict[str, str]]:
    """Days whose published SHA-256 is no longer the one stored with the day (None: gone)."""
    return {
        day: {"stored": sha256, "published": published.get(day) or "missing"}
        for day, sha256 in stored.items()
        if published.get(day) != sha256
    }
