"""The Strategies tab's pure parts: the ranked summary in percent, the chart's first pick (never a
strategy that did not trade), the parameter heatmap and the fold marks."""

import json

import numpy as np
import pandas as pd
import pytest

from crypto_assets.dashboard.strategy_view import (
    best_walk_forward,
    compact_params,
    fold_starts,
    heatmap_frame,
    ranked_summary,
)


def row(strategy: str, timeframe: str, sample: str, params: dict, **values) -> dict:
    base = {"total_return": 0.0, "cagr": np.nan, "sharpe": np.nan, "max_drawdown": 0.0}
    base |= {"trades": 0, "excess_return": 0.0, "selected": False}
    return {
        "strategy": strategy,
        "timeframe": timeframe,
        "sample": sample,
        "params": json.dumps(params, sort_keys=True),
        **base,
        **values,
    }


FOLDS = {"2024-04-01": {"fast": 5, "slow": 50}, "2024-07-01": {"fast": 10, "slow": 50}}
BACKTESTS = pd.DataFrame(
    [
        row(
            "buy_and_hold",
            "1d",
            "walk_forward",
            {"2024-04-01": {}},
            total_return=0.1,
            sharpe=0.8,
            trades=2,
        ),
        row(
            "sma_cross",
            "1d",
            "walk_forward",
            FOLDS,
            total_return=0.25,
            cagr=0.5,
            sharpe=1.5,
            trades=7,
            excess_return=0.15,
        ),
        row("rsi_reversion", "1d", "walk_forward", {"2024-04-01": None}, sharpe=np.nan),
        row(
            "buy_and_hold",
            "4h",
            "walk_forward",
            {"2024-04-01": {}},
            total_return=0.12,
            sharpe=0.9,
            trades=2,
        ),
        row("macd_cross", "4h", "walk_forward", FOLDS, total_return=-0.05, sharpe=3.0, trades=0),
        row("sma_cross", "1d", "in_sample", {"fast": 5, "slow": 50}, sharpe=1.0, selected=True),
        row("sma_cross", "1d", "in_sample", {"fast": 10, "slow": 50}, sharpe=0.4),
        row("sma_cross", "1d", "in_sample", {"fast": 5, "slow": 100}, sharpe=0.7),
        row(
            "sma_cross",
            "1d",
            "in_sample",
            {"fast": 5, "slow": 100, "stop_loss_pct": 0.05},
            sharpe=0.9,
        ),
    ]
)


def test_ranked_summary_puts_walk_forward_beside_buy_and_hold_in_percent() -> None:
    table, sample = ranked_summary(BACKTESTS)
    assert sample == "walk_forward"
    assert list(zip(table["strategy"], table["timeframe"], strict=True)) == [
        ("macd_cross", "4h"),
        ("sma_cross", "1d"),
        ("buy_and_hold", "4h"),
        ("buy_and_hold", "1d"),
        ("rsi_reversion", "1d"),
    ]
    sma = table.iloc[1]
    assert sma["walk-forward return %"] == pytest.approx(25.0)
    assert sma["walk-forward CAGR %"] == pytest.approx(50.0)
    assert sma["buy and hold return %"] == pytest.approx(10.0)
    assert sma["excess over buy and hold %"] == pytest.approx(15.0)
    assert sma["selected set (in-sample)"] == "fast 5, slow 50"


def test_a_set_reads_short_in_the_table() -> None:
    text = json.dumps(
        {
            "fast": 5,
            "position_size": 0.5,
            "slow": 50,
            "stop_loss_pct": 0.05,
            "take_profit_pct": None,
        }
    )
    assert compact_params(text) == "fast 5, slow 50; stop 5%, size 0.5"
    assert compact_params("{}") == "" and compact_params("") == ""


def test_the_chart_opens_on_the_best_walk_forward_that_traded() -> None:
    assert best_walk_forward(BACKTESTS) == ("sma_cross", "1d")  # macd_cross never traded
    only_hold = BACKTESTS[BACKTESTS["strategy"] == "buy_and_hold"]
    assert best_walk_forward(only_hold) == ("buy_and_hold", "4h")


def test_heatmap_lays_the_first_two_parameters_out_with_the_best_of_the_rest() -> None:
    cells = heatmap_frame(BACKTESTS, "sma_cross", "1d", "in_sample", "sharpe")
    assert cells.index.name == "slow" and cells.columns.name == "fast"
    assert cells.loc[50, 5] == 1.0 and cells.loc[100, 5] == 0.9  # 0.9: the set with a stop
    assert cells.loc[50, 10] == 0.4 and np.isnan(cells.loc[100, 10])


def test_fold_starts_come_from_the_walk_forward_params() -> None:
    assert fold_starts(json.dumps(FOLDS)) == [
        pd.Timestamp("2024-04-01"),
        pd.Timestamp("2024-07-01"),
    ]
