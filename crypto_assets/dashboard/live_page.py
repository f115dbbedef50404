"""The live strip's Streamlit side: the server's one live feed, the quote redrawn every second,
and the stream's health for the data-health tab (the feed itself is in dashboard/live.py)."""

from __future__ import annotations

from datetime import datetime, timezone

import streamlit as st

from crypto_assets.dashboard.live import LiveFeed, LiveState
from crypto_assets.settings import KLINES, SettingsError

LIVE_SECONDS = 1


@st.cache_resource
def live_feed() -> LiveFeed:
    """The server's one stream connection, shared by every viewer (Binance limits them per IP)."""
    return LiveFeed.from_env().start()


def live_state() -> LiveState | None:
    try:
        return live_feed().state()
    except (SettingsError, ValueError) as exc:
        st.error(f"No live feed: {exc}")
        return None


@st.fragment(run_every=LIVE_SECONDS)
def live_quote() -> None:
    """The last price and the forming candle, every second: cheap, so the page keeps up."""
    state = live_state()
    if state is None:
        return
    if state.notice:
        st.warning(state.notice)
    price, forming, pending = st.columns([1.2, 2, 1])
    if state.last_price is None:
        price.metric("Last price", "waiting")
    else:
        price.metric("Last price", f"{state.last_price:,.2f}")
    if state.pushed_at_ms is not None:
        pushed = datetime.fromtimestamp(state.pushed_at_ms / 1000, timezone.utc)
        via = {"stream": "the stream", "rest": "REST polling"}.get(state.source, state.source)
        price.caption(f"pushed at {pushed:%H:%M:%S.%f}"[:-3] + f" UTC via {via}")
    if state.forming is not None:
        candle = state.forming
        opened = datetime.fromtimestamp(candle.open_time / 1000, timezone.utc)
        forming.metric(
            f"Forming {KLINES.interval} candle, {opened:%H:%M} UTC",
            f"{float(candle.close):,.2f}",
            f"{float(candle.close) - float(candle.open):+,.2f}",
        )
        forming.caption(
            f"open {float(candle.open):,.2f}, high {float(candle.high):,.2f},"
            f" low {float(candle.low):,.2f}, volume {float(candle.volume):,.3f}"
        )
    pending.metric("Not yet in the warehouse", f"{len(state.closed)} candles held")


def stream_health() -> None:
    """The live feed as an operator checks it: up since when, how fresh, how often it broke."""
    state = live_state()
    if state is None:
        return
    health = state.health
    age = health.message_age()
    since = (
        "not connected"
        if health.connected_since is None
        else f"{datetime.fromtimestamp(health.connected_since, timezone.utc):%Y-%m-%d %H:%M:%S} UTC"
    )
    st.subheader("Live stream")
    state_col, since_col, age_col, reconnects, repaired = st.columns(5)
    state_col.metric("Stream", health.state)
    since_col.metric("Connected since", since)
    age_col.metric("Last message", "never" if age is None else f"{age:.1f} s ago")
    reconnects.metric("Reconnects", health.reconnects)
    repaired.metric("Repaired over REST", f"{health.repaired_candles} candles")
    st.caption(
        f"{health.url}; {health.malformed_messages} malformed messages skipped;"
        f" {state.rest_polls} REST polls while the stream was down"
        + (f"; last error: {health.last_error}" if health.last_error else "")
    )
    if state.notice:
        st.warning(state.notice)
