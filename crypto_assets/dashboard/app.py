"""The market page: ``streamlit run`` this file (``crypto-assets dashboard`` does).

Controls live in the sidebar. Above the tabs, the live strip: the last price and the forming
candle every second, and every 2 s a chart of the last 90 minutes with the candles not yet in
the warehouse, from the server's one stream connection (REST when it is down; see
dashboard/live.py). The three tabs sit in a fragment that reruns every
CRYPTO_ASSETS_DASHBOARD_REFRESH_SECONDS (default 30), so new candles appear without a reload.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from typing import Any, TypeVar

import pandas as pd
import streamlit as st

from crypto_assets.dashboard import figures, strategy_view
from crypto_assets.dashboard.connection import WarehouseBusy, WarehouseMissing, warehouse_from_env
from crypto_assets.dashboard.health import (
    daily_health,
    failed_check_days,
    format_age,
    freshness,
    health_window,
)
from crypto_assets.dashboard.live import LiveState, live_candles, merge_live
from crypto_assets.dashboard.live_page import (
    LIVE_SECONDS,
    live_feed,
    live_quote,
    live_state,
    stream_health,
)
from crypto_assets.dashboard.queries import (
    TIMEFRAME_MINUTES,
    MarketQueries,
    MarketView,
    Quote,
    base_minutes,
    offered_timeframes,
)
from crypto_assets.settings import KLINES, env_int, local_home, max_staleness

T = TypeVar("T")
log = logging.getLogger(__name__)
REFRESH_SECONDS = env_int("CRYPTO_ASSETS_DASHBOARD_REFRESH_SECONDS", 30, minimum=1, maximum=60)
LIVE_CHART_SECONDS = 2
LIVE_WINDOW = timedelta(minutes=90)
HEALTH_DAYS = 90
RANGES = {
    "Last 24 hours": timedelta(days=1),
    "Last 7 days": timedelta(days=7),
    "Last 30 days": timedelta(days=30),
    "Last 90 days": timedelta(days=90),
    "Last year": timedelta(days=365),
    "Everything": None,
    "Custom dates": None,
}
LOAD_HINT = (
    "Load candles first: `make materialize DATE=YYYY-MM-DD` (one day) or "
    "`make backfill START=... END=...`, or turn on the fresh-data sensor under `make run`."
)
ANALYTICS_HINT = "run `crypto-assets analytics` (or materialize the analytics assets in `make run`)"


def utc_now() -> datetime:
    """Now in UTC, naive like the warehouse's timestamps."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


@st.cache_resource
def _queries() -> MarketQueries:
    return MarketQueries(warehouse_from_env(), KLINES.table, base_minutes(KLINES.interval))


@st.cache_resource
def _last_good() -> dict[Any, tuple[Any, datetime]]:
    """The last answer of each read, shown while the pipeline holds the warehouse."""
    return {}


def _read(key: Any, read: Callable[[], T]) -> tuple[T, str | None]:
    try:
        value = read()
    except WarehouseBusy as exc:
        if key not in _last_good():
            raise
        value, read_at = _last_good()[key]
        return value, f"{exc}; showing what was read at {read_at:%H:%M:%S} UTC."
    _last_good()[key] = (value, utc_now())
    return value, None


@st.cache_data(ttl=REFRESH_SECONDS, show_spinner=False)
def _market(
    timeframe: str, lookback: timedelta | None, custom: tuple[date, date] | None
) -> MarketView:
    return _queries().read_market(timeframe, lookback=lookback, custom=custom)


@st.cache_data(ttl=REFRESH_SECONDS, show_spinner=False)
def _strategies() -> dict[str, Any]:
    return _queries().read_strategies()


@st.cache_data(ttl=REFRESH_SECONDS, show_spinner=False)
def _prices(timeframe: str, start: datetime, end: datetime) -> pd.DataFrame:
    return _queries().read_prices(timeframe, start, end)


@st.cache_data(ttl=REFRESH_SECONDS, show_spinner=False)
def _daily_counts(days: int) -> tuple[Quote | None, pd.DataFrame]:
    return _queries().read_daily_counts(days)


@st.cache_data(ttl=REFRESH_SECONDS, show_spinner=False)
def _failed_days(since: datetime, home: str) -> tuple[dict[str, list[str]], str | None]:
    return failed_check_days(since, {"DAGSTER_HOME": home})


@st.cache_data(ttl=LIVE_SECONDS * 2, show_spinner=False)
def _recent_base_candles(end: datetime) -> pd.DataFrame:
    return _queries().read_recent(end - LIVE_WINDOW, end)


def _warehouse_tail() -> tuple[pd.DataFrame, str | None]:
    """The warehouse's last ``LIVE_WINDOW`` of base candles, or none and why."""
    end = utc_now().replace(second=0, microsecond=0) + timedelta(minutes=1)
    try:
        tail, stale = _read("tail", lambda: _recent_base_candles(end))
    except (WarehouseMissing, WarehouseBusy) as exc:
        return pd.DataFrame(), str(exc)
    return tail, stale


def dagster_home() -> str:
    """The pipeline's Dagster instance: DAGSTER_HOME, else where `make run` keeps it."""
    return os.environ.get("DAGSTER_HOME") or str(local_home() / "dagster_home")


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
    view, stale = _read(
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
        f"`{_queries().names[name]}`"
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


def _side_by_side(backtests: pd.DataFrame) -> pd.DataFrame:
    """In-sample and out-of-sample metrics of each parameter set on one row."""
    metrics = ["total_return", "cagr", "sharpe", "max_drawdown", "win_rate", "trades"]
    split = backtests[backtests["sample"].isin(["in_sample", "out_of_sample"])]
    if split.empty:
        return backtests
    table = split.pivot_table(
        index=["strategy", "params", "timeframe"], columns="sample", values=metrics, aggfunc="first"
    )
    order = [(metric, sample) for metric in metrics for sample in ("in_sample", "out_of_sample")]
    table = table[[column for column in order if column in table.columns]]
    table.columns = [f"{metric} ({sample.replace('_', ' ')})" for metric, sample in table.columns]
    selected = split.groupby(["strategy", "params", "timeframe"])["selected"].any()
    return table.join(selected).reset_index()


def _percent_columns(table: pd.DataFrame) -> dict[str, Any]:
    return {
        column: st.column_config.NumberColumn(format="%.2f%%")
        for column in table.columns
        if column.endswith("%")
    }


def _of(frame: pd.DataFrame | None, **keys: str) -> pd.DataFrame:
    if frame is None:
        return pd.DataFrame()
    keep = pd.Series(True, index=frame.index)
    for column, value in keys.items():
        keep &= frame[column] == value
    return frame[keep]


def strategies_tab() -> None:
    data, stale = _read("strategies", _strategies)
    if stale:
        st.warning(stale)
    backtests = data["backtests"]
    if backtests is None or backtests.empty:
        st.info(f"No backtest results in the warehouse yet: {ANALYTICS_HINT}.")
        return
    summary, sample = strategy_view.ranked_summary(backtests)
    st.subheader("Strategies ranked by their walk-forward Sharpe")
    st.caption(
        "Each strategy's set picked on the in-sample bars, and its walk-forward result (each"
        " calendar-quarter fold traded on the set picked on the bars before it) beside buy and"
        " hold's on the same bars."
        if sample == strategy_view.WALK_FORWARD
        else "No walk-forward fold yet (the bars span no calendar quarter's start): the"
        " selected sets' out-of-sample results."
    )
    st.dataframe(summary, width="stretch", hide_index=True, column_config=_percent_columns(summary))
    runs = list(zip(summary["strategy"], summary["timeframe"], strict=True))
    best = strategy_view.best_walk_forward(backtests)
    choice = st.selectbox(
        "Equity of",
        runs,
        index=runs.index(best) if best in runs else 0,
        format_func=lambda run: f"{run[0]} ({run[1]})",
    )
    strategy, timeframe = choice
    equity = _of(data["backtest_equity"], strategy=strategy, timeframe=timeframe, sample=sample)
    if equity.empty:
        st.info("No equity curve for this strategy.")
    else:
        hold = _of(
            data["backtest_equity"], strategy="buy_and_hold", timeframe=timeframe, sample=sample
        )
        row = _of(backtests, strategy=strategy, timeframe=timeframe, sample=sample)
        folds = (
            strategy_view.fold_starts(row["params"].iloc[0])
            if sample == strategy_view.WALK_FORWARD and len(row)
            else []
        )
        st.plotly_chart(
            strategy_view.walk_forward_figure(
                equity.sort_values("day"), hold.sort_values("day"), folds, strategy
            ),
            width="stretch",
            key="equity",
        )
    trades = _of(data["backtest_trades"], strategy=strategy, timeframe=timeframe, sample=sample)
    if trades.empty:
        st.info("No trades for this strategy.")
    else:
        start = trades["entry_time"].min() - timedelta(days=1)
        end = trades["exit_time"].max() + timedelta(days=1)
        prices = _prices(timeframe, start.to_pydatetime(), end.to_pydatetime())
        st.plotly_chart(figures.trades_figure(prices, trades), width="stretch", key="trades")
    heatmap_section(backtests)
    with st.expander("Every parameter set, in-sample and out-of-sample"):
        st.dataframe(_side_by_side(backtests), width="stretch", hide_index=True)


def heatmap_section(backtests: pd.DataFrame) -> None:
    st.subheader("Parameter heatmap")
    strategies = sorted(set(backtests["strategy"]) - {"buy_and_hold"})
    if not strategies:
        return
    left, middle, right = st.columns(3)
    strategy = left.selectbox("Strategy", strategies, key="heatmap_strategy")
    timeframes = sorted(set(backtests.loc[backtests["strategy"] == strategy, "timeframe"]))
    timeframe = middle.selectbox("Timeframe", timeframes, key="heatmap_timeframe")
    metric = right.selectbox(
        "Metric", ["sharpe", "total_return", "max_drawdown", "calmar"], key="heatmap_metric"
    )
    sample = st.radio(
        "Sample", ["in_sample", "out_of_sample", "full"], horizontal=True, key="sample"
    )
    cells = strategy_view.heatmap_frame(backtests, strategy, timeframe, sample, metric)
    if cells.empty:
        st.info("This strategy has fewer than two parameters to lay out.")
        return
    st.caption("Each cell: the best of the other parameters, stops, targets and sizes.")
    st.plotly_chart(strategy_view.heatmap_figure(cells, metric), width="stretch", key="heatmap")


def health_tab() -> None:
    stream_health()
    now = utc_now()
    (quote, counts), stale = _read("health", lambda: _daily_counts(HEALTH_DAYS))
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
    days = daily_health(counts, failed, _queries().base_minutes, now, window)
    st.plotly_chart(figures.health_figure(days), width="stretch", key="health")
    problems = days[(days["candles"] < days["expected"]) | days["failed"]]
    st.write(
        f"{len(problems)} of {len(days)} days ({window[0]:%Y-%m-%d} to {window[1]:%Y-%m-%d})"
        " are short of candles or failed a check:"
    )
    st.dataframe(problems, width="stretch", hide_index=True)


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
        _queries()
    except ValueError as exc:
        log.error("The dashboard cannot reach the warehouse: %s", exc)
        st.error("The dashboard cannot reach the warehouse; its log on the server says why.")
        return
    controls = sidebar()
    live_quote()
    live_chart()
    live_page(controls)


main()
