"""What the Strategies tab shows, from the backtest tables: the ranked summary, the parameter
heatmap and the walk-forward folds. Pure pandas and Plotly; the page only lays them out."""

from __future__ import annotations

import json

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

WALK_FORWARD = "walk_forward"
EXIT_PARAMS = ("stop_loss_pct", "take_profit_pct", "position_size")
PERCENT = ("total_return", "cagr", "max_drawdown", "excess_return")
SUMMARY_COLUMNS = {
    "strategy": "strategy",
    "timeframe": "timeframe",
    "total_return": "walk-forward return %",
    "cagr": "walk-forward CAGR %",
    "sharpe": "walk-forward Sharpe",
    "max_drawdown": "walk-forward max drawdown %",
    "trades": "walk-forward trades",
    "hold_return": "buy and hold return %",
    "excess_return": "excess over buy and hold %",
    "selected_params": "selected set (in-sample)",
}
EXIT_LABELS = {"stop_loss_pct": "stop", "take_profit_pct": "target"}


def compact_params(text: str) -> str:
    """'{"fast": 5, "position_size": 0.5, "slow": 50, "stop_loss_pct": 0.05, ...}' ->
    'fast 5, slow 50; stop 5%, size 0.5': short enough for a table cell."""
    if not text:
        return ""
    params = json.loads(text)
    signal = ", ".join(
        f"{name} {value}" for name, value in params.items() if name not in EXIT_PARAMS
    )
    exits = [
        f"{label} {params[name]:.0%}"
        for name, label in EXIT_LABELS.items()
        if params.get(name) is not None
    ]
    if params.get("position_size") not in (None, 1.0):
        exits.append(f"size {params['position_size']}")
    return "; ".join(part for part in (signal, ", ".join(exits)) if part)


def _walk_forward_or_out_of_sample(backtests: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The walk-forward rows; without folds yet (under a quarter of data), the selected sets'
    out-of-sample rows."""
    walk = backtests[backtests["sample"] == WALK_FORWARD]
    if not walk.empty:
        return walk, WALK_FORWARD
    chosen = backtests[(backtests["sample"] == "out_of_sample") & backtests["selected"]]
    return chosen, "out_of_sample"


def ranked_summary(backtests: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """One row per strategy and timeframe: its in-sample pick, its walk-forward figures and buy
    and hold's beside them; best walk-forward Sharpe first, returns in percent."""
    rows, sample = _walk_forward_or_out_of_sample(backtests)
    selected = backtests[(backtests["sample"] == "in_sample") & backtests["selected"]]
    picks = selected.set_index(["strategy", "timeframe"])["params"]
    hold = rows[rows["strategy"] == "buy_and_hold"].set_index("timeframe")["total_return"]
    table = rows.assign(
        selected_params=[
            compact_params(picks.get((row.strategy, row.timeframe), ""))
            for row in rows.itertuples()
        ],
        hold_return=rows["timeframe"].map(hold),
    )
    table = table.sort_values(["sharpe", "total_return"], ascending=False, na_position="last")
    table = table[list(SUMMARY_COLUMNS)].reset_index(drop=True)
    for column in (*PERCENT, "hold_return"):
        table[column] = table[column].astype(float) * 100
    if sample != WALK_FORWARD:
        names = {
            key: value.replace("walk-forward", "out-of-sample")
            for key, value in SUMMARY_COLUMNS.items()
        }
        return table.rename(columns=names), sample
    return table.rename(columns=SUMMARY_COLUMNS), sample


def best_walk_forward(backtests: pd.DataFrame) -> tuple[str, str] | None:
    """(strategy, timeframe) of the best walk-forward Sharpe among strategies that traded, so
    the chart never opens on a flat line; buy and hold only if nothing else traded."""
    rows, _ = _walk_forward_or_out_of_sample(backtests)
    traded = rows[(rows["trades"] > 0) & rows["sharpe"].notna()]
    if traded.empty:
        return None
    active = traded[traded["strategy"] != "buy_and_hold"]
    best = (active if not active.empty else traded).sort_values("sharpe").iloc[-1]
    return str(best["strategy"]), str(best["timeframe"])


def fold_starts(params: str) -> list[pd.Timestamp]:
    """The fold starts of a walk-forward row's params (fold start -> set)."""
    return [pd.Timestamp(day) for day in json.loads(params)]


def heatmap_frame(
    backtests: pd.DataFrame, strategy: str, timeframe: str, sample: str, metric: str
) -> pd.DataFrame:
    """The metric over the strategy's first two signal parameters (rows: the second, columns:
    the first); each cell is the best over the other parameters, exits and sizes."""
    rows = backtests[
        (backtests["strategy"] == strategy)
        & (backtests["timeframe"] == timeframe)
        & (backtests["sample"] == sample)
    ]
    if rows.empty:
        return pd.DataFrame()
    params = pd.DataFrame([json.loads(text) for text in rows["params"]], index=rows.index)
    signal = [name for name in params.columns if name not in EXIT_PARAMS]
    if len(signal) < 2:
        return pd.DataFrame()
    first, second = signal[:2]
    cells = params[[first, second]].assign(value=rows[metric].astype(float))
    return cells.pivot_table(index=second, columns=first, values="value", aggfunc="max")


def heatmap_figure(cells: pd.DataFrame, metric: str) -> go.Figure:
    percent = metric in PERCENT
    values = cells.to_numpy() * (100 if percent else 1)
    figure = go.Figure(
        go.Heatmap(
            z=values,
            x=[str(value) for value in cells.columns],
            y=[str(value) for value in cells.index],
            colorscale="RdYlGn",
            zmid=0,
            text=[["" if pd.isna(value) else f"{value:.1f}" for value in row] for row in values],
            texttemplate="%{text}",
            colorbar={"title": f"{metric} %" if percent else metric},
        )
    )
    figure.update_layout(
        height=380,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        xaxis={"title": cells.columns.name, "type": "category"},
        yaxis={"title": cells.index.name, "type": "category"},
    )
    return figure


def walk_forward_figure(
    equity: pd.DataFrame, hold: pd.DataFrame, folds: list[pd.Timestamp], label: str
) -> go.Figure:
    """Stitched walk-forward equity and drawdown against buy and hold's, folds marked."""
    figure = make_subplots(
        rows=2, cols=1, shared_xaxes=True, row_heights=[0.65, 0.35], vertical_spacing=0.05
    )
    lines = [(equity, label, "solid")]
    if not hold.empty:
        lines.append((hold, "buy and hold", "dot"))
    for frame, name, dash in lines:
        figure.add_trace(
            go.Scatter(x=frame["day"], y=frame["equity"], name=name, line={"dash": dash}),
            row=1,
            col=1,
        )
        figure.add_trace(
            go.Scatter(
                x=frame["day"],
                y=frame["drawdown"],
                name=f"{name} drawdown",
                line={"dash": dash},
                fill="tozeroy" if dash == "solid" else None,
            ),
            row=2,
            col=1,
        )
    for number, start in enumerate(folds, start=1):
        figure.add_vline(x=start, line={"dash": "dash", "color": "#888", "width": 1})
        figure.add_annotation(
            x=start, y=1.0, yref="paper", text=f"fold {number}", showarrow=False, xanchor="left"
        )
    figure.update_layout(height=450, margin={"l": 10, "r": 10, "t": 30, "b": 10})
    figure.update_yaxes(title_text="equity", row=1, col=1)
    figure.update_yaxes(title_text="drawdown", tickformat=".0%", row=2, col=1)
    return figure
