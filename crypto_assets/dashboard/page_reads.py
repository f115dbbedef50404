"""What every tab of the page shares: the one query layer, reads that fall back to their last
answer while the pipeline holds the warehouse, the refresh period and the hints shown when the
warehouse is empty."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, TypeVar

import streamlit as st

from crypto_assets.dashboard.connection import WarehouseBusy, warehouse_from_env
from crypto_assets.dashboard.queries import MarketQueries, base_minutes
from crypto_assets.settings import KLINES, env_int

T = TypeVar("T")
REFRESH_SECONDS = env_int("CRYPTO_ASSETS_DASHBOARD_REFRESH_SECONDS", 30, minimum=1, maximum=60)
LOAD_HINT = (
    "Load candles first: `make materialize DATE=YYYY-MM-DD` (one day) or "
    "`make backfill START=... END=...`, or turn on the fresh-data sensor under `make run`."
)
ANALYTICS_HINT = "run `crypto-assets analytics` (or materialize the analytics assets in `make run`)"


def utc_now() -> datetime:
    """Now in UTC, naive like the warehouse's timestamps."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


@st.cache_resource
def market_queries() -> MarketQueries:
    """The server's one query layer over the warehouse the environment names."""
    return MarketQueries(warehouse_from_env(), KLINES.table, base_minutes(KLINES.interval))


@st.cache_resource
def _last_good() -> dict[Any, tuple[Any, datetime]]:
    """The last answer of each read, shown while the pipeline holds the warehouse."""
    return {}


def read(key: Any, reader: Callable[[], T]) -> tuple[T, str | None]:
    """``reader()``, or while the warehouse is busy its last answer under ``key`` and a note
    saying when that was read (the busy error when there is none)."""
    try:
        value = reader()
    except WarehouseBusy as exc:
        if key not in _last_good():
            raise
        value, read_at = _last_good()[key]
        return value, f"{exc}; showing what was read at {read_at:%H:%M:%S} UTC."
    _last_good()[key] = (value, utc_now())
    return value, None
