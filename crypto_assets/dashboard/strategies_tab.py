"""The Strategies tab: the ranked walk-forward summary, one strategy's equity and trades, the
parameter heatmap and every set's in- and out-of-sample metrics (the frames and figures come
from dashboard/strategy_view.py and dashboard/figures.py)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import streamlit as st

from crypto_assets.dashboard import figures, strategy_view
from crypto_assets.dashboard.page_reads import (
    ANALYTICS_HINT,
    REFRESH_SECONDS,
    market_queries,
    read,
)


@st.cache_data(ttl=REFRESH_SECONDS, show_spinner=False)
def _strategies() -> dict[str, Any]:
    return market_queries().read_strategies()


@st.cache_data(ttl=REFRESH_SECONDS, show_spinner=False)
def _prices(timeframe: str, start: datetime, end: datetime) -> pd.DataFrame:
    return market_queries().read_prices(timeframe, start, end)


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
    """The tab's body, from the backtest tables the analytics assets wrote."""
    data, stale = read("strategies", _strategies)
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
    """One strategy's metric over its two main parameters, the rest at their best."""
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
