"""Pure figure builders: frames in, Plotly figures out (no Streamlit, no warehouse)."""

from __future__ import annotations

from collections.abc import Collection

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from crypto_assets.analytics.label_layout import label_positions

UP, DOWN = "#26a69a", "#ef5350"
OVERLAYS = {
    "SMA 20": ("sma_20",),
    "SMA 50": ("sma_50",),
    "SMA 200": ("sma_200",),
    "EMA 12": ("ema_12",),
    "EMA 26": ("ema_26",),
    "Bollinger": ("bb_upper", "bb_middle", "bb_lower"),
}
PRESSURE = ("Taker buy ratio", "Net taker volume")


PRICE_PAD = 0.05
"""Space above the highest high and below the lowest low, as a share of their span."""
LABEL_FONT_SIZE = 11
LABEL_GAP = 0.045
"""Least distance between two level labels, as a share of the price axis: the price panel is
about 370 px of the 900 px figure, and an 11 px label needs about 16 px."""

MAX_BARS = 2000
"""Above this many candles, volume panels are one filled step line instead of a bar each: the
browser draws one path rather than thousands, and at that density the bars merge anyway."""


def candlestick_trace(candles: pd.DataFrame) -> go.Candlestick:
    """The price candles, coloured alike on every chart of the page."""
    return go.Candlestick(
        x=candles["open_time"],
        open=candles["open"],
        high=candles["high"],
        low=candles["low"],
        close=candles["close"],
        increasing_line_color=UP,
        decreasing_line_color=DOWN,
        name="candles",
    )


LIVE_UP, LIVE_DOWN = "#b2dfdb", "#ffcdd2"
FORMING_UP, FORMING_DOWN = "#ffb300", "#8d6e63"


def price_traces(candles: pd.DataFrame) -> list[go.Candlestick]:
    """The warehouse's candles, then (pale) those drawn from the live feed and not yet in the
    warehouse, then the forming candle (amber): the page never passes one off as the other."""
    if "in_warehouse" not in candles and "status" not in candles:
        return [candlestick_trace(candles)]
    status = (
        candles["status"].fillna("") if "status" in candles else pd.Series("", index=candles.index)
    )
    stored = candles["in_warehouse"] if "in_warehouse" in candles else status.eq("")
    forming = status.eq("forming")
    traces = [candlestick_trace(candles[stored & ~forming])]
    for rows, name, up, down in (
        (candles[~stored & ~forming], "not yet in the warehouse", LIVE_UP, LIVE_DOWN),
        (candles[forming], "forming", FORMING_UP, FORMING_DOWN),
    ):
        if len(rows):
            trace = candlestick_trace(rows)
            trace.update(name=name, increasing_line_color=up, decreasing_line_color=down)
            traces.append(trace)
    return traces


def live_figure(candles: pd.DataFrame, last_price: float | None) -> go.Figure:
    """The last hour or so of 1m candles with the live ones marked and the last price as a line."""
    figure = go.Figure(price_traces(candles))
    if last_price is not None:
        figure.add_hline(
            y=last_price,
            line={"color": FORMING_UP, "width": 1, "dash": "dot"},
            annotation_text=f"{last_price:,.2f}",
            annotation_position="right",
        )
    figure.update_layout(
        height=320,
        showlegend=True,
        legend={"orientation": "h", "y": 1.08},
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        uirevision="live",
    )
    figure.update_xaxes(rangeslider_visible=False)
    return figure


def _bars_or_steps(
    x: pd.Series, y: pd.Series, name: str, up: pd.Series | None = None
) -> go.Bar | go.Scatter:
    """Bars coloured by ``up`` (default: the value's sign), or a step line when there are many."""
    if len(x) <= MAX_BARS:
        rising = (y >= 0) if up is None else up
        return go.Bar(x=x, y=y, marker_color=[UP if r else DOWN for r in rising], name=name)
    return go.Scatter(
        x=x, y=y, mode="lines", line={"shape": "hv", "width": 0}, fill="tozeroy", name=name
    )


def market_figure(
    candles: pd.DataFrame,
    indicators: pd.DataFrame | None = None,
    overlays: Collection[str] = (),
    levels: pd.DataFrame | None = None,
    volume_profile: pd.DataFrame | None = None,
    pressure: str = PRESSURE[0],
) -> go.Figure:
    """Candles with volume, buy/sell pressure, RSI and MACD panels; indicator overlays and
    support/resistance lines over the price; the volume profile beside the price axis."""
    has_indicators = indicators is not None and not indicators.empty
    figure = make_subplots(
        rows=5,
        cols=2,
        shared_xaxes=True,
        shared_yaxes=True,
        column_widths=[0.87, 0.13],
        row_heights=[0.48, 0.13, 0.13, 0.13, 0.13],
        horizontal_spacing=0.005,
        vertical_spacing=0.025,
        specs=[[{}, {}], *[[{}, None] for _ in range(4)]],
        subplot_titles=("", "Volume profile", "Volume", pressure, "RSI 14", "MACD"),
    )
    for trace in price_traces(candles):
        figure.add_trace(trace, row=1, col=1)
    if has_indicators:
        for label in overlays:
            for column in OVERLAYS[label]:
                figure.add_trace(
                    go.Scatter(
                        x=indicators["open_time"],
                        y=indicators[column],
                        mode="lines",
                        line={"width": 1, "dash": "dot" if label == "Bollinger" else None},
                        name=column,
                    ),
                    row=1,
                    col=1,
                )
    axis = price_axis_range(candles) if not candles.empty else None
    if axis is not None and levels is not None and not levels.empty:
        visible = levels[levels["price"].between(*axis)].sort_values("price")
        labels = label_positions(visible["price"].tolist(), *axis, LABEL_GAP)
        for level, label_y in zip(visible.itertuples(), labels, strict=True):
            color = UP if level.kind == "support" else DOWN
            figure.add_hline(
                y=level.price,
                line={"color": color, "width": 1, "dash": "dash"},
                row=1,
                col=1,
            )
            figure.add_annotation(
                name="level",
                text=f"{level.kind} {level.price:,.0f} ({level.timeframe})",
                x=0.005,
                xref="x domain",
                y=label_y,
                yref="y",
                xanchor="left",
                yanchor="middle",
                showarrow=False,
                font={"size": LABEL_FONT_SIZE, "color": color},
                bgcolor="rgba(255, 255, 255, 0.75)",
            )
    if volume_profile is not None and not volume_profile.empty:
        figure.add_trace(
            go.Bar(
                x=volume_profile["volume"],
                y=volume_profile["price"],
                orientation="h",
                marker_color=[
                    "#ffa726" if poc else ("#90caf9" if inside else "#cfd8dc")
                    for poc, inside in zip(
                        volume_profile["is_poc"], volume_profile["in_value_area"], strict=True
                    )
                ],
                name="volume profile",
            ),
            row=1,
            col=2,
        )
    figure.add_trace(
        _bars_or_steps(
            candles["open_time"],
            candles["volume"],
            "volume",
            up=candles["close"] >= candles["open"],
        ),
        row=2,
        col=1,
    )
    if pressure == PRESSURE[0]:
        ratio = candles["taker_base_vol"] / candles["volume"].where(candles["volume"] > 0)
        figure.add_trace(
            go.Scatter(x=candles["open_time"], y=ratio, mode="lines", name="taker buy ratio"),
            row=3,
            col=1,
        )
        figure.add_hline(y=0.5, line={"color": "grey", "width": 1}, row=3, col=1)
    else:
        net = 2 * candles["taker_base_vol"] - candles["volume"]
        figure.add_trace(
            _bars_or_steps(candles["open_time"], net, "net taker volume"), row=3, col=1
        )
    if has_indicators:
        figure.add_trace(
            go.Scatter(x=indicators["open_time"], y=indicators["rsi_14"], name="rsi_14"),
            row=4,
            col=1,
        )
        for bound in (30, 70):
            figure.add_hline(y=bound, line={"color": "grey", "width": 1}, row=4, col=1)
        figure.add_trace(
            go.Bar(x=indicators["open_time"], y=indicators["macd_hist"], name="macd_hist"),
            row=5,
            col=1,
        )
        for column in ("macd", "macd_signal"):
            figure.add_trace(
                go.Scatter(x=indicators["open_time"], y=indicators[column], name=column),
                row=5,
                col=1,
            )
    figure.update_layout(
        height=900,
        showlegend=False,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        bargap=0,
    )
    figure.update_xaxes(rangeslider_visible=False)
    if axis is not None:
        # Shared with the profile beside it: a 90-day profile never widens the candles' axis.
        figure.update_yaxes(range=list(axis), autorange=False, row=1, col=1)
    return figure


def price_axis_range(candles: pd.DataFrame, pad: float = PRICE_PAD) -> tuple[float, float]:
    """The price axis: the visible candles' lowest low to highest high, ``pad`` of that span
    added on each side (half a percent of the price when the candles are flat)."""
    low, high = float(candles["low"].min()), float(candles["high"].max())
    margin = (high - low) * pad or abs(high) * 0.005 or 1.0
    return low - margin, high + margin


def chart_levels(levels: pd.DataFrame | None, timeframe: str) -> pd.DataFrame | None:
    """The levels of one timeframe for a chart: the 1d ones on daily candles, the 4h ones on
    finer candles (the other when those are missing), so at most 3 show on each side."""
    if levels is None or levels.empty:
        return levels
    preferred = ("1d", "4h") if timeframe == "1d" else ("4h", "1d")
    for level_timeframe in preferred:
        chosen = levels[levels["timeframe"] == level_timeframe]
        if not chosen.empty:
            return chosen
    return levels.iloc[0:0]


def trades_figure(candles: pd.DataFrame, trades: pd.DataFrame) -> go.Figure:
    """Price candles with the strategy's entries (up triangles) and exits (down triangles)."""
    figure = go.Figure(candlestick_trace(candles))
    figure.add_trace(
        go.Scatter(
            x=trades["entry_time"],
            y=trades["entry_price"],
            mode="markers",
            marker={"symbol": "triangle-up", "size": 11, "color": "#1565c0"},
            name="entry",
        )
    )
    figure.add_trace(
        go.Scatter(
            x=trades["exit_time"],
            y=trades["exit_price"],
            mode="markers",
            marker={"symbol": "triangle-down", "size": 11, "color": "#6a1b9a"},
            text=[f"{value:+.2%}" for value in trades["trade_return"]],
            name="exit",
        )
    )
    figure.update_layout(height=450, margin={"l": 10, "r": 10, "t": 30, "b": 10})
    figure.update_xaxes(rangeslider_visible=False)
    return figure


def health_figure(days: pd.DataFrame) -> go.Figure:
    """Candles loaded per day against the expected count, failed days in red."""
    colors = [
        DOWN if failed else ("#ffa726" if loaded < expected else UP)
        for failed, loaded, expected in zip(
            days["failed"], days["candles"], days["expected"], strict=True
        )
    ]
    figure = go.Figure(
        go.Bar(x=days["trading_day"], y=days["candles"], marker_color=colors, name="loaded")
    )
    figure.add_trace(
        go.Scatter(
            x=days["trading_day"],
            y=days["expected"],
            mode="lines",
            line={"color": "grey", "dash": "dash"},
            name="expected",
        )
    )
    figure.update_layout(height=300, margin={"l": 10, "r": 10, "t": 30, "b": 10})
    return figure
