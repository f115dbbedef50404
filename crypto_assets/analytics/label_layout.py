"""Where a chart puts the labels of its price levels so none overlaps: shared by the PNG charts
(analytics/charts.py) and the dashboard's Plotly figures, and no part of the structure analysis
that finds the levels. Pure Python, nothing of ours."""

from __future__ import annotations


def label_positions(prices: list[float], low: float, high: float, gap_share: float) -> list[float]:
    """Heights for the labels of levels at the given ascending prices on a price axis from
    ``low`` to ``high``: each as near its price as it can be while labels stay ``gap_share`` of
    the axis apart (less when that many cannot fit) and inside the axis, so none overlaps."""
    if not prices:
        return []
    gap = min(gap_share * (high - low), (high - low) / len(prices))
    half = gap / 2
    placed: list[float] = []
    for price in prices:  # upwards: push a label above its lower neighbour's
        lowest = placed[-1] + gap if placed else low + half
        placed.append(max(price, lowest))
    ceiling = high - half
    for index in range(len(placed) - 1, -1, -1):  # downwards: back under the top
        placed[index] = min(placed[index], ceiling)
        ceiling = placed[index] - gap
    return placed
