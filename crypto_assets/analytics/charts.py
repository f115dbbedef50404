"""Charts as PNG bytes, drawn with matplotlib's Agg backend (no display, no browser).

Pure functions from frames to PNG: the assets attach them to their materializations and write
them to the artifacts zone. Each stays well under 300 KB at 100 dpi, and 1000 px wide fits the
metadata dialog of Dagster's UI.
"""

import io

import matplotlib

matplotlib.use("Agg")  # before pyplot loads: no display needed

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from crypto_assets.analytics.label_layout import label_positions

DPI = 100
UP, DOWN = "#26a69a", "#ef5350"
MAX_LEVELS = 6
LABEL_GAP = 0.04
"""Least distance between level labels, as a share of the price axis: a 7 pt label is about
13 px of the price panel's 380 px."""


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    plt.close(figure)
    return buffer.getvalue()


def candlestick_chart(
    bars: pd.DataFrame,
    indicators: pd.DataFrame,
    levels: pd.DataFrame,
    title: str,
    size: tuple[float, float] = (10, 7),
) -> bytes:
    """Candles with SMA 20/50/200 and Bollinger bands, the levels in view, volume, and the
    buy/sell pressure panel (net taker volume bars, taker-buy ratio line).

    ``bars`` and ``indicators`` share open_time; levels are horizontal lines (green support,
    red resistance), at most the MAX_LEVELS nearest the last close inside the range shown.
    """
    frame = bars.merge(
        indicators.drop(columns=["close", "taker_buy_ratio"], errors="ignore"),
        on="open_time",
        how="left",
    ).sort_values("open_time")
    frame["taker_buy_ratio"] = frame["taker_base_vol"] / frame["volume"].where(frame["volume"] > 0)
    times = mdates.date2num(pd.to_datetime(frame["open_time"]).to_numpy())
    width = (times[1] - times[0]) * 0.7 if len(times) > 1 else 0.5
    rising = (frame["close"] >= frame["open"]).to_numpy()
    colors = [UP if up else DOWN for up in rising]

    figure, (price, volume, pressure) = plt.subplots(
        3, 1, figsize=size, sharex=True, gridspec_kw={"height_ratios": [4, 1.2, 1.5]}
    )
    price.vlines(times, frame["low"], frame["high"], colors=colors, linewidth=0.8)
    bodies = (frame["close"] - frame["open"]).abs()
    price.bar(
        times,
        bodies.where(bodies > 0, frame["close"] * 1e-4),
        bottom=frame[["open", "close"]].min(axis=1),
        width=width,
        color=colors,
    )
    for column, style in (("sma_20", "#1f77b4"), ("sma_50", "#ff7f0e"), ("sma_200", "#9467bd")):
        if column in frame:
            price.plot(times, frame[column], color=style, linewidth=1, label=column.upper())
    if "bb_upper" in frame:
        price.fill_between(
            times,
            frame["bb_lower"],
            frame["bb_upper"],
            color="#999999",
            alpha=0.15,
            label="BB 20, 2",
        )
    low, high = frame["low"].min(), frame["high"].max()
    in_view = levels[(levels["price"] >= low) & (levels["price"] <= high)]
    last_close = frame["close"].iloc[-1]
    distance = (in_view["price"] / last_close - 1).abs()
    nearest = in_view.loc[distance.sort_values().index[:MAX_LEVELS]].sort_values("price")
    axis = price.get_ylim()
    heights = label_positions(nearest["price"].tolist(), *axis, LABEL_GAP)
    for level, height in zip(nearest.itertuples(), heights, strict=True):
        color = UP if level.kind == "support" else DOWN
        price.axhline(level.price, color=color, linestyle="--", linewidth=0.8, alpha=0.8)
        price.annotate(
            f"{level.kind} {level.price:,.0f} x{level.touches}",
            (times[0], height),
            fontsize=7,
            color=color,
            va="center",
            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.7, "pad": 1},
        )
    price.set_ylim(axis)
    price.set_title(title)
    price.set_ylabel("price (USDT)")
    if price.get_legend_handles_labels()[0]:  # no overlay without indicators
        price.legend(loc="best", fontsize=8)
    price.grid(alpha=0.3)

    volume.bar(times, frame["volume"], width=width, color=colors)
    volume.set_ylabel("volume")
    volume.grid(alpha=0.3)

    net = 2 * frame["taker_base_vol"] - frame["volume"]
    pressure.bar(times, net, width=width, color=[UP if v >= 0 else DOWN for v in net])
    pressure.set_ylabel("net taker vol")
    pressure.grid(alpha=0.3)
    ratio = pressure.twinx()
    ratio.plot(times, frame["taker_buy_ratio"], color="#444444", linewidth=0.8)
    ratio.axhline(0.5, color="#444444", linestyle=":", linewidth=0.8)
    ratio.set_ylabel("taker buy ratio")
    pressure.xaxis_date()
    figure.autofmt_xdate()
    figure.tight_layout()
    return _png(figure)


def equity_chart(
    equity: dict[str, pd.Series], title: str, size: tuple[float, float] = (10, 6)
) -> bytes:
    """Equity curves (start 1.0) and their drawdowns, one line per label; the label
    'buy_and_hold' is drawn black as the benchmark."""
    figure, (top, bottom) = plt.subplots(
        2, 1, figsize=size, sharex=True, gridspec_kw={"height_ratios": [3, 1.3]}
    )
    for label, series in equity.items():
        benchmark = label.startswith("buy_and_hold")
        style = {"color": "black", "linewidth": 1.6} if benchmark else {"linewidth": 1.0}
        top.plot(series.index, series.to_numpy(), label=label, **style)
        bottom.plot(series.index, (series / series.cummax() - 1).to_numpy() * 100, **style)
    top.set_title(title)
    top.set_ylabel("equity (start = 1)")
    top.legend(loc="upper left", fontsize=8)
    top.grid(alpha=0.3)
    bottom.set_ylabel("drawdown (%)")
    bottom.grid(alpha=0.3)
    figure.autofmt_xdate()
    figure.tight_layout()
    return _png(figure)
