"""Market structure: support and resistance levels from swing points, and a volume profile.

A swing low is a bar whose low is the lowest of the ``window`` bars on each side (a swing high
likewise with highs). A flat top or bottom (the same extreme again within ``window`` bars) is
one swing, at its first bar. Only swings of the last ``lookback`` bars count, and each weighs
``0.5 ** (age / half_life)`` with its age in bars, so a swing ``half_life`` bars old counts half
as much as one on the newest bar. Swing prices within ``tolerance`` of each other are one
level (their mean), touched once per swing; a level needs ``min_touches`` swings, and its
``strength`` is the sum of its swings' weights. A level under the last close is support, one
above it resistance; the ``max_per_side`` strongest of each side are kept.

The volume profile spreads each bar's volume evenly over its high-low range: a bin gets the
share of the range it covers (a bar with no range puts it all in its price's bin). The point of
control (POC) is the bin with the most volume; the value area starts as the POC and takes in
the larger of the two bins just outside it (the lower on a tie), one bin at a time, until it
holds 70% of the volume.
"""

import numpy as np
import pandas as pd

LEVEL_COLUMNS = (
    "price",
    "kind",
    "timeframe",
    "touches",
    "strength",
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
    """Swing highs and lows: (open_time, position, price, side) with side 'high' or 'low'.

    A bar needs ``window`` bars on both sides, so the newest ``window`` bars are never swings;
    the same extreme again within ``window`` bars (a flat top or bottom) is one swing.
    """
    size = 2 * window + 1
    found = []
    for side, column, extreme in (("high", "high", "max"), ("low", "low", "min")):
        prices = bars[column]
        is_swing = prices.eq(getattr(prices.rolling(size, center=True), extreme)())
        positions = np.flatnonzero(is_swing.to_numpy())
        keep = np.ones(len(positions), dtype=bool)
        values = prices.to_numpy()
        for index in range(1, len(positions)):
            previous = positions[index - 1]
            if (
                positions[index] - previous <= window
                and values[positions[index]] == values[previous]
            ):
                keep[index] = False
        kept = positions[keep]
        found.append(
            pd.DataFrame(
                {
                    "open_time": bars["open_time"].to_numpy()[kept],
                    "position": kept,
                    "price": values[kept],
                    "side": side,
                }
            )
        )
    return pd.concat(found, ignore_index=True)


def cluster_levels(
    swings: pd.DataFrame, tolerance: float, last_close: float, timeframe: str, min_touches: int
) -> pd.DataFrame:
    """Swing prices sorted and grouped while each is within ``tolerance`` (relative) of the
    group's first price; a group of at least ``min_touches`` swings is a level at their mean,
    as strong as the sum of their ``weight``."""
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
                "strength": float(group["weight"].sum()),
                "first_touch": group["open_time"].min(),
                "last_touch": group["open_time"].max(),
                "last_close": last_close,
                "distance_pct": price / last_close - 1,
            }
        )
    return pd.DataFrame(rows, columns=list(LEVEL_COLUMNS))


def strongest_per_side(levels: pd.DataFrame, max_per_side: int) -> pd.DataFrame:
    """The ``max_per_side`` strongest supports and resistances (the nearer on a tie), by price."""
    ranked = levels.assign(distance=levels["distance_pct"].abs()).sort_values(
        ["strength", "distance"], ascending=[False, True]
    )
    kept = ranked.groupby("kind", sort=False).head(max_per_side)
    return kept.drop(columns="distance").sort_values("price").reset_index(drop=True)


def levels(
    bars: pd.DataFrame,
    timeframe: str,
    window: int = 3,
    tolerance: float = 0.01,
    min_touches: int = 2,
    lookback: int = 365,
    half_life: float = 90.0,
    max_per_side: int = 3,
) -> pd.DataFrame:
    """Support and resistance levels of one timeframe's bars (ordered by open_time), from the
    swings of the newest ``lookback`` bars."""
    if bars.empty:
        return pd.DataFrame(columns=list(LEVEL_COLUMNS))
    bars = bars.sort_values("open_time").tail(lookback).reset_index(drop=True)
    last_close = float(bars["close"].iloc[-1])
    swings = swing_points(bars, window)
    age = len(bars) - 1 - swings["position"]
    swings = swings.assign(weight=0.5 ** (age / half_life))
    found = cluster_levels(swings, tolerance, last_close, timeframe, min_touches)
    return strongest_per_side(found, max_per_side)


def volume_profile(
    bars: pd.DataFrame, bar_length: pd.Timedelta, bins: int = 48, value_area: float = 0.70
) -> pd.DataFrame:
    """Volume by price bin over the given bars, each bar's volume spread evenly over its
    high-low range, with the POC and the value area flagged. ``window_end`` is when the last
    bar closes (its open_time + ``bar_length``)."""
    if bars.empty:
        return pd.DataFrame(columns=list(PROFILE_COLUMNS))
    low, high = float(bars["low"].min()), float(bars["high"].max())
    if high <= low:
        high = low * (1 + 1e-9) + 1e-9
    edges = np.linspace(low, high, bins + 1)
    shares = range_shares(
        bars["low"].to_numpy(dtype="float64"), bars["high"].to_numpy(dtype="float64"), edges
    )
    volume = bars["volume"].to_numpy(dtype="float64") @ shares
    buy = bars["taker_base_vol"].to_numpy(dtype="float64") @ shares
    poc = int(np.argmax(volume))
    return pd.DataFrame(
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
            "window_end": bars["open_time"].max() + bar_length,
        }
    )


def range_shares(lows: np.ndarray, highs: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """(bars x bins) share of each bar's high-low range inside each bin; every row sums to 1.
    A bar with no range (high == low) is all in the bin of its price."""
    overlap = np.clip(
        np.minimum(highs[:, None], edges[None, 1:]) - np.maximum(lows[:, None], edges[None, :-1]),
        0.0,
        None,
    )
    span = highs - lows
    shares = np.divide(overlap, span[:, None], out=np.zeros_like(overlap), where=span[:, None] > 0)
    flat = np.flatnonzero(span <= 0)
    if len(flat):
        index = np.clip(np.searchsorted(edges, lows[flat], side="right") - 1, 0, len(edges) - 2)
        shares[flat] = 0.0
        shares[flat, index] = 1.0
    return shares


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
