"""Market structure: support and resistance levels from swing points, and a volume profile.

A swing low is a bar whose low is the lowest of the ``window`` bars on each side (a swing high
likewise with highs); swing prices within ``tolerance`` of each other are one level, touched
once per swing. A level under the last close is support, one above it resistance.

The volume profile puts each bar's volume into the price bin of its typical price
((high + low + close) / 3). The point of control (POC) is the bin with the most volume; the
value area grows from the POC towards the larger neighbour until it holds 70% of the volume.
"""

import numpy as np
import pandas as pd

LEVEL_COLUMNS = (
    "price",
    "kind",
    "timeframe",
    "touches",
    "first_touch",
    "last_touch",
    "last_close",
    "distance_pct",
)
PROFILE_COLUMNS = (
    "bin_low",
    "bin_high",
    "price",
    "volume",
    "taker_buy_volume",
    "taker_sell_volume",
    "is_poc",
    "in_value_area",
    "window_start",
    "window_end",
)


def swing_points(bars: pd.DataFrame, window: int) -> pd.DataFrame:
    """Swing highs and lows: (open_time, price, side) with side 'high' or 'low'.

    A bar needs ``window`` bars on both sides, so the newest ``window`` bars are never swings.
    """
    size = 2 * window + 1
    highs = bars["high"].rolling(size, center=True).max()
    lows = bars["low"].rolling(size, center=True).min()
    is_high = bars["high"].eq(highs)
    is_low = bars["low"].eq(lows)
    return pd.concat(
        [
            pd.DataFrame(
                {"open_time": bars["open_time"][is_high], "price": bars["high"][is_high]}
            ).assign(side="high"),
            pd.DataFrame(
                {"open_time": bars["open_time"][is_low], "price": bars["low"][is_low]}
            ).assign(side="low"),
        ],
        ignore_index=True,
    )


def cluster_levels(
    swings: pd.DataFrame, tolerance: float, last_close: float, timeframe: str, min_touches: int
) -> pd.DataFrame:
    """Swing prices sorted and grouped while each is within ``tolerance`` (relative) of the
    group's first price; a group of at least ``min_touches`` swings is a level at their mean."""
    rows = []
    ordered = swings.sort_values("price").reset_index(drop=True)
    group_start = 0
    for position in range(1, len(ordered) + 1):
        if position < len(ordered) and ordered["price"].iloc[position] <= ordered["price"].iloc[
            group_start
        ] * (1 + tolerance):
            continue
        group = ordered.iloc[group_start:position]
        group_start = position
        if len(group) < min_touches:
            continue
        price = float(group["price"].mean())
        rows.append(
            {
                "price": price,
                "kind": "support" if price <= last_close else "resistance",
                "timeframe": timeframe,
                "touches": len(group),
                "first_touch": group["open_time"].min(),
                "last_touch": group["open_time"].max(),
                "last_close": last_close,
                "distance_pct": price / last_close - 1,
            }
        )
    return pd.DataFrame(rows, columns=list(LEVEL_COLUMNS))


def levels(
    bars: pd.DataFrame,
    timeframe: str,
    window: int = 3,
    tolerance: float = 0.01,
    min_touches: int = 2,
) -> pd.DataFrame:
    """Support and resistance levels of one timeframe's bars (ordered by open_time)."""
    if bars.empty:
        return pd.DataFrame(columns=list(LEVEL_COLUMNS))
    bars = bars.sort_values("open_time").reset_index(drop=True)
    last_close = float(bars["close"].iloc[-1])
    return cluster_levels(swing_points(bars, window), tolerance, last_close, timeframe, min_touches)


def volume_profile(bars: pd.DataFrame, bins: int = 48, value_area: float = 0.70) -> pd.DataFrame:
    """Volume by price bin over the given bars, with the POC and the value area flagged."""
    if bars.empty:
        return pd.DataFrame(columns=list(PROFILE_COLUMNS))
    low, high = float(bars["low"].min()), float(bars["high"].max())
    if high <= low:
        high = low * (1 + 1e-9) + 1e-9
    edges = np.linspace(low, high, bins + 1)
    typical = ((bars["high"] + bars["low"] + bars["close"]) / 3).to_numpy()
    index = np.clip(np.searchsorted(edges, typical, side="right") - 1, 0, bins - 1)
    volume = np.bincount(index, bars["volume"].to_numpy(dtype="float64"), minlength=bins)
    buy = np.bincount(index, bars["taker_base_vol"].to_numpy(dtype="float64"), minlength=bins)
    poc = int(np.argmax(volume))
    profile = pd.DataFrame(
        {
            "bin_low": edges[:-1],
            "bin_high": edges[1:],
            "price": (edges[:-1] + edges[1:]) / 2,
            "volume": volume,
            "taker_buy_volume": buy,
            "taker_sell_volume": volume - buy,
            "is_poc": np.arange(bins) == poc,
            "in_value_area": value_area_mask(volume, poc, value_area),
            "window_start": bars["open_time"].min(),
            "window_end": bars["open_time"].max(),
        }
    )
    return profile


def value_area_mask(volume: np.ndarray, poc: int, share: float) -> np.ndarray:
    """Bins of the value area: from the POC, add the larger neighbouring bin (below on a tie)
    until the area holds ``share`` of all volume."""
    inside = np.zeros(len(volume), dtype=bool)
    inside[poc] = True
    below, above = poc - 1, poc + 1
    total, held = volume.sum(), volume[poc]
    while held < share * total and (below >= 0 or above < len(volume)):
        below_volume = volume[below] if below >= 0 else -1.0
        above_volume = volume[above] if above < len(volume) else -1.0
        if below_volume >= above_volume:
            inside[below], held, below = True, held + below_volume, below - 1
        else:
            inside[above], held, above = True, held + above_volume, above + 1
    return inside
