"""The market page: ``streamlit run`` this file (``crypto-assets dashboard`` does).

Controls live in the sidebar. Above the tabs, the live strip: the last price and the forming
candle every second, and every 2 s a chart of the last 90 minutes with the candles not yet in
the warehouse, from the server's one stream connection (REST when it is down; see
dashboard/live.py). The three tabs sit in a fragment that reruns every
CRYPTO_ASSETS_DASHBOARD_REFRESH_SECONDS (default 30), so new candles appear without a reload.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from typing import Any

import pandas as pd
import streamlit as st

from crypto_assets.dashboard import figures
from crypto_assets.dashboard.connection import WarehouseBusy, WarehouseMissing
from crypto_assets.dashboard.health import format_age
from crypto_assets.dashboard.health_tab import health_tab
from crypto_assets.dashboard.live import LiveState, live_candles, merge_live
from crypto_assets.dashboard.live_page import LIVE_SECONDS, live_feed, live_quote, live_state
from crypto_assets.dashboard.page_reads import (
    ANALYTICS_HINT,
    LOAD_HINT,
    REFRESH_SECONDS,
    market_queries,
    read,
    utc_now,
)
from crypto_assets.dashboard.queries import (
    TIMEFRAME_MINUTES,
    MarketView,
    base_minutes,
    offered_timeframes,
)
from crypto_assets.dashboard.strategies_tab import strategies_tab
from crypto_assets.settings import KLINES

log = logging.getLogger(__name__)
LIVE_CHART_SECONDS = 2
LIVE_WINDOW = timedelta(minutes=90)
RANGES = {
    "Last 24 hours": timedelta(days=1),
    "Last 7 days": timedelta(days=7),
    "Last 30 days": timedelta(days=30),
    "Last 90 days": timedelta(days=90),
    "Last year": timedelta(days=365),
    "Everything": None,
    "Custom dates": None,
}


@st.cache_data(ttl=REFRESH_SECONDS, show_spinner=False)
def _market(
    timeframe: str, lookback: timedelta | None, custom: tuple[date, date] | None
) -> MarketView:
    return market_queries().read_market(timeframe, lookback=lookback, custom=custom)


@st.cache_data(ttl=LIVE_SECONDS * 2, show_spinner=False)
def _recent_base_candles(end: datetime) -> pd.DataFrame:
    return market_queries().read_recent(end - LIVE_WINDOW, end)


def _warehouse_tail() -> tuple[pd.DataFrame, str | None]:
    """The warehouse's last ``LIVE_WINDOW`` of base candles, or none and why."""
    end = utc_now().replace(second=0, microsecond=0) + timedelta(minutes=1)
    try:
        tail, stale = read("tail", lambda: _recent_base_candles(end))
    except (WarehouseMissing, WarehouseBusy) as exc:
        return pd.DataFrame(), str(exc)
    return tail, stale


def header(view: MarketView) -> None:
    quote = view.quote
    close, change, open_time, age = st.columns([1, 1, 1.5, 1])
    close.metric("Last close", f"{quote.close:,.2f}")
    change.metric(
        "24 h change",
        "n/a" if quote.change_24h is None else f"{quote.change_24h:+.2%}",
    )
    open_time.metric("Open time (UTC)", f"{quote.open_time:%Y-%m-%d %H:%M}")
    age.metric("Newest candle age", format_age(utc_now() - quote.close_time))


def _live_frame(state: LiveState) -> tuple[pd.DataFrame, str | None]:
    """The warehouse's last candles with the live ones after them (``status`` marks those)."""
    tail, problem = _warehouse_tail()
    newest = tail["open_time"].iloc[-1] if len(tail) else None
    if newest is not None:
        live_feed().forget_through(int(pd.Timestamp(newest).value // 1_000_000))
    live = live_candles(state.closed, state.forming, newest)
    frame = pd.concat([tail.assign(status=""), live], ignore_index=True) if len(tail) else live
    return frame, problem


@st.fragment(run_every=LIVE_CHART_SECONDS)
def live_chart() -> None:
    """The last ``LIVE_WINDOW`` of candles, the live ones marked; never an empty chart."""
    state = live_state()
    if state is None:
        return
    frame, problem = _live_frame(state)
    if problem:
        st.caption(f"Warehouse: {problem}")
    if frame.empty:
        st.info("Waiting for the first candles from Binance (stream, else REST).")
        return
    st.plotly_chart(figures.live_figure(frame, state.last_price), width="stretch", key="live_chart")


def market_tab(controls: dict[str, Any]) -> MarketView | None:
    view, stale = read(
        ("market", controls["timeframe"], controls["lookback"], controls["custom"]),
        lambda: _market(controls["timeframe"], controls["lookback"], controls["custom"]),
    )
    if stale:
        st.warning(stale)
    if view.quote is None:
        st.warning(f"The warehouse has no {KLINES.symbol} candles yet. {LOAD_HINT}")
        return None
    header(view)
    state = live_state()
    if state is not None and view.end > view.quote.open_time:  # the range reaches the present
        live = live_candles(state.closed, state.forming, view.quote.open_time)
        minutes = TIMEFRAME_MINUTES[view.plan.timeframe]
        view.candles = merge_live(view.candles, live, minutes)
        if len(live):
            st.caption(
                f"{len(live)} {KLINES.interval} candles from the live feed are drawn pale: not yet"
                " in the warehouse (the forming one included)."
            )
    for note in view.plan.notes:
        st.info(note)
    if view.candles.empty:
        st.warning(
            f"No candles between {view.start:%Y-%m-%d %H:%M} and {view.end:%Y-%m-%d %H:%M} UTC;"
            f" the warehouse holds {view.quote.first_open_time:%Y-%m-%d} to"
            f" {view.quote.open_time:%Y-%m-%d %H:%M}. Pick another range."
        )
        return view
    missing = [
        f"`{market_queries().names[name]}`"
        for name in (f"indicators_{view.indicator_timeframe}", "levels", "volume_profile")
        if name not in view.tables
    ]
    if missing:
        st.info(f"Not in the warehouse yet: {', '.join(missing)}: {ANALYTICS_HINT}.")
    st.caption(
        f"{len(view.candles):,} {view.plan.timeframe} candles, {view.start:%Y-%m-%d %H:%M} to"
        f" {view.end:%Y-%m-%d %H:%M} UTC; indicators from the {view.indicator_timeframe} table."
    )
    st.plotly_chart(
        figures.market_figure(
            view.candles,
            view.indicators,
            controls["overlays"],
            figures.chart_levels(view.levels, view.plan.timeframe),
            view.volume_profile,
            controls["pressure"],
        ),
        width="stretch",
        key="market_chart",
    )
    return view


def sidebar() -> dict[str, Any]:
    st.sidebar.title(f"{KLINES.symbol} market")
    offered = offered_timeframes(base_minutes(KLINES.interval))
    timeframe = st.sidebar.selectbox(
        "Timeframe", offered, index=offered.index("15m") if "15m" in offered else 0
    )
    range_name = st.sidebar.selectbox("Range", list(RANGES), index=1)
    custom = None
    if range_name == "Custom dates":
        today = utc_now().date()
        picked = st.sidebar.date_input("From, to (UTC)", (today - timedelta(days=7), today))
        if len(picked) == 2:
            custom = (picked[0], picked[1])
    overlays = st.sidebar.multiselect(
        "Overlays", list(figures.OVERLAYS), default=["SMA 20", "SMA 50", "Bollinger"]
    )
    pressure = st.sidebar.radio("Pressure", figures.PRESSURE)
    st.sidebar.caption(f"Refreshes every {REFRESH_SECONDS} s.")
    return {
        "timeframe": timeframe,
        "lookback": RANGES[range_name],
        "custom": custom,
        "overlays": overlays,
        "pressure": pressure,
    }


@st.fragment(run_every=REFRESH_SECONDS)
def live_page(controls: dict[str, Any]) -> None:
    market, strategies, health = st.tabs(["Market", "Strategies", "Data health"])
    for tab, draw in (
        (market, lambda: market_tab(controls)),
        (strategies, strategies_tab),
        (health, health_tab),
    ):
        with tab:
            try:
                draw()
            except WarehouseMissing as exc:
                log.warning("%s", exc)  # the path stays on the server
                st.warning(f"There is no warehouse yet. {LOAD_HINT}")
            except WarehouseBusy as exc:
                st.warning(f"{exc}; the page tries again in {REFRESH_SECONDS} s.")
    st.caption(f"Read at {utc_now():%Y-%m-%d %H:%M:%S} UTC.")


def main() -> None:
    st.set_option("client.showErrorDetails", "none")  # the browser never sees a traceback
    st.set_page_config(page_title=f"{KLINES.symbol} market", layout="wide")
    try:
        market_queries()
    except ValueError as exc:
        log.error("The dashboard cannot reach the warehouse: %s", exc)
        st.error("The dashboard cannot reach the warehouse; its log on the server says why.")
        return
    controls = sidebar()
    live_quote()
    live_chart()
    live_page(controls)


main()
