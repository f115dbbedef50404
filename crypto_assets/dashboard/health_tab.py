"""The Data health tab: the live stream's state, the newest candle's freshness, and candles per
day against the expected count with the days a check failed (computed in dashboard/health.py)."""

from __future__ import annotations

import os
from datetime import datetime

import pandas as pd
import streamlit as st

from crypto_assets.dashboard import figures
from crypto_assets.dashboard.health import (
    daily_health,
    failed_check_days,
    freshness,
    health_window,
)
from crypto_assets.dashboard.live_page import stream_health
from crypto_assets.dashboard.page_reads import (
    LOAD_HINT,
    REFRESH_SECONDS,
    market_queries,
    read,
    utc_now,
)
from crypto_assets.dashboard.queries import Quote
from crypto_assets.settings import local_home, max_staleness

HEALTH_DAYS = 90


@st.cache_data(ttl=REFRESH_SECONDS, show_spinner=False)
def _daily_counts(days: int) -> tuple[Quote | None, pd.DataFrame]:
    return market_queries().read_daily_counts(days)


@st.cache_data(ttl=REFRESH_SECONDS, show_spinner=False)
def _failed_days(since: datetime, home: str) -> tuple[dict[str, list[str]], str | None]:
    return failed_check_days(since, {"DAGSTER_HOME": home})


def dagster_home() -> str:
    """The pipeline's Dagster instance: DAGSTER_HOME, else where `make run` keeps it."""
    return os.environ.get("DAGSTER_HOME") or str(local_home() / "dagster_home")


def health_tab() -> None:
    """The tab's body: what an operator checks before trusting the charts."""
    stream_health()
    now = utc_now()
    (quote, counts), stale = read("health", lambda: _daily_counts(HEALTH_DAYS))
    if stale:
        st.warning(stale)
    if quote is None:
        st.warning(f"The warehouse has no candles yet. {LOAD_HINT}")
        return
    limit = max_staleness()
    st.metric("Newest candle", f"{quote.open_time:%Y-%m-%d %H:%M} UTC")
    st.write(f"Freshness of the newest candle: {freshness(quote.close_time, now, limit)}")
    window = health_window(quote.first_open_time, quote.open_time, now, HEALTH_DAYS)
    failed, reason = _failed_days(window[0].to_pydatetime(), dagster_home())
    if reason:
        st.info(reason)
    days = daily_health(counts, failed, market_queries().base_minutes, now, window)
    st.plotly_chart(figures.health_figure(days), width="stretch", key="health")
    problems = days[(days["candles"] < days["expected"]) | days["failed"]]
    st.write(
        f"{len(problems)} of {len(days)} days ({window[0]:%Y-%m-%d} to {window[1]:%Y-%m-%d})"
        " are short of candles or failed a check:"
    )
    st.dataframe(problems, width="stretch", hide_index=True)
