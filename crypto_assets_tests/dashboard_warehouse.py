"""A warehouse for the dashboard tests: candles through the real lineage, and the analytics
tables of the contract (notes: analytics_tables) filled with small values computed here.

The analytics values are not meant to be right trading-wise; they are what the tests expect the
page to show, computed with pandas independently of the dashboard's code.
"""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import pandas as pd

from crypto_assets.resources import local_resources
from crypto_assets_tests.lineage import materialize_days

SCHEMA = "cryptoschema"
BAR_AGGREGATES = {
    "open": "first",
    "high": "max",
    "low": "min",
    "close": "last",
    "volume": "sum",
    "quote_asset_volume": "sum",
    "num_trades": "sum",
    "taker_base_vol": "sum",
    "taker_quote_vol": "sum",
}


def load_days(
    home: Path,
    base_url: str,
    first_day: str,
    last_day: str | None = None,
    instance: dg.DagsterInstance | None = None,
) -> dg.ExecuteInProcessResult:
    """The lineage (raw -> clean -> warehouse) over the days, as one run."""
    resources = local_resources({"CRYPTO_ASSETS_HOME": str(home), "BINANCE_BASE_URL": base_url})
    return materialize_days(resources, first_day, last_day, instance=instance)


def read_base(database: Path) -> pd.DataFrame:
    with duckdb.connect(str(database), read_only=True) as connection:
        return connection.execute(f"SELECT * FROM {SCHEMA}.btcusdt ORDER BY open_time").fetchdf()


def bars(base: pd.DataFrame, rule: str) -> pd.DataFrame:
    """Bars of the contract's bar tables, resampled with pandas."""
    grouped = base.set_index("open_time").resample(rule)
    frame = grouped.agg(BAR_AGGREGATES)
    frame["candle_count"] = grouped.size()
    frame = frame[frame["candle_count"] > 0].reset_index()
    minutes = pd.Timedelta(rule).total_seconds() / 60
    frame["is_complete"] = frame["candle_count"] == minutes
    frame.insert(1, "symbol", "BTCUSDT")
    return frame


def indicators(bars_frame: pd.DataFrame) -> pd.DataFrame:
    close = bars_frame["close"]
    frame = pd.DataFrame({"open_time": bars_frame["open_time"], "close": close})
    for window in (20, 50, 200):
        frame[f"sma_{window}"] = close.rolling(window).mean()
    for span in (12, 26):
        frame[f"ema_{span}"] = close.ewm(span=span, adjust=False).mean()
    change = close.diff()
    gain = change.clip(lower=0).rolling(14).mean()
    loss = (-change.clip(upper=0)).rolling(14).mean()
    frame["rsi_14"] = 100 - 100 / (1 + gain / loss)
    frame["macd"] = frame["ema_12"] - frame["ema_26"]
    frame["macd_signal"] = frame["macd"].ewm(span=9, adjust=False).mean()
    frame["macd_hist"] = frame["macd"] - frame["macd_signal"]
    spread = close.rolling(20).std()
    frame["bb_middle"] = frame["sma_20"]
    frame["bb_upper"] = frame["sma_20"] + 2 * spread
    frame["bb_lower"] = frame["sma_20"] - 2 * spread
    frame["atr_14"] = (bars_frame["high"] - bars_frame["low"]).rolling(14).mean()
    frame["obv"] = (np.sign(change.fillna(0)) * bars_frame["volume"]).cumsum()
    frame["taker_buy_ratio"] = bars_frame["taker_base_vol"] / bars_frame["volume"]
    frame["net_taker_volume"] = 2 * bars_frame["taker_base_vol"] - bars_frame["volume"]
    return frame


def levels(base: pd.DataFrame) -> pd.DataFrame:
    last_close = float(base["close"].iloc[-1])
    low, high = float(base["low"].min()), float(base["high"].max())
    rows = [("support", low, "1d"), ("resistance", high, "4h")]
    return pd.DataFrame(
        {
            "price": [price for _, price, _ in rows],
            "kind": [kind for kind, _, _ in rows],
            "timeframe": [timeframe for _, _, timeframe in rows],
            "touches": [3, 2],
            "first_touch": [base["open_time"].iloc[0]] * 2,
            "last_touch": [base["open_time"].iloc[-1]] * 2,
            "last_close": [last_close] * 2,
            "distance_pct": [price / last_close - 1 for _, price, _ in rows],
        }
    )


def volume_profile(base: pd.DataFrame, bins: int = 24) -> pd.DataFrame:
    edges = np.linspace(base["low"].min(), base["high"].max(), bins + 1)
    which = np.clip(np.digitize(base["close"], edges) - 1, 0, bins - 1)
    volume = np.bincount(which, weights=base["volume"], minlength=bins)
    buy = np.bincount(which, weights=base["taker_base_vol"], minlength=bins)
    order = np.argsort(volume)[::-1]
    in_area = np.zeros(bins, dtype=bool)
    in_area[order[: int(bins * 0.7)]] = True
    return pd.DataFrame(
        {
            "bin_low": edges[:-1],
            "bin_high": edges[1:],
            "price": (edges[:-1] + edges[1:]) / 2,
            "volume": volume,
            "taker_buy_volume": buy,
            "taker_sell_volume": volume - buy,
            "is_poc": np.arange(bins) == order[0],
            "in_value_area": in_area,
            "window_start": base["open_time"].iloc[0],
            "window_end": base["open_time"].iloc[-1],
        }
    )


STRATEGIES = [  # strategy, params, selected
    ("buy_and_hold", "{}", True),
    ("sma_cross", json.dumps({"fast": 10, "slow": 30, "stop_loss_pct": None}), True),
    ("sma_cross", json.dumps({"fast": 20, "slow": 50, "stop_loss_pct": None}), False),
    ("sma_cross", json.dumps({"fast": 10, "slow": 50, "stop_loss_pct": 0.05}), False),
    ("rsi_reversion", json.dumps({"low": 30, "high": 70}), True),
]
WALK_FORWARD = {  # (return, Sharpe, trades) of one fold from 2024-01-02; rsi_reversion: none
    "buy_and_hold": (0.02, 1.0, 1),
    "sma_cross": (0.05, 2.0, 4),
    "rsi_reversion": (0.0, float("nan"), 0),
}


def _result(strategy, params, sample, start, end, number, selected) -> dict:
    return {
        "strategy": strategy,
        "params": params,
        "timeframe": "1h",
        "sample": sample,
        "start": start,
        "end": end,
        "total_return": 0.01 * (number + 1),
        "cagr": None,
        "sharpe": 0.5 + number,
        "sortino": 0.7 + number,
        "max_drawdown": -0.02 * (number + 1),
        "max_drawdown_days": 0.5,
        "calmar": None,
        "win_rate": 0.4 + 0.1 * number,
        "trades": 3 + number,
        "exposure": 0.5,
        "profit_factor": 1.5,
        "avg_trade_return": 0.002,
        "avg_bars_held": 6.0,
        "max_consecutive_losses": 1,
        "excess_return": 0.01 * number,
        "stop_loss_pct": json.loads(params).get("stop_loss_pct"),
        "take_profit_pct": None,
        "position_size": 1.0,
        "fee_bps": 10.0,
        "slippage_bps": 5.0,
        "selected": selected,
    }


def _equity(strategy, params, sample, start, end, number) -> list[dict]:
    days = pd.date_range(start.normalize(), end.normalize(), freq="D")
    curve = pd.Series(1 + 0.01 * (number + 1) * np.sin(np.arange(len(days))), index=days)
    curve.iloc[0] = 1.0
    return [
        {
            "strategy": strategy,
            "params": params,
            "timeframe": "1h",
            "sample": sample,
            "day": day,
            "equity": value,
            "drawdown": value / curve[:day].max() - 1,
        }
        for day, value in curve.items()
    ]


def _trades(strategy, params, sample, hourly, number) -> list[dict]:
    picks = hourly.iloc[number : number + 24 : 6].reset_index(drop=True)
    entries, exits = picks.iloc[:-1:2].itertuples(), picks.iloc[1::2].itertuples()
    return [
        {
            "strategy": strategy,
            "params": params,
            "timeframe": "1h",
            "sample": sample,
            "entry_time": entry.open_time,
            "entry_price": entry.close,
            "exit_time": exit_.open_time,
            "exit_price": exit_.close,
            "trade_return": exit_.close / entry.close - 1,
            "exit_reason": "signal",
            "bars_held": 6,
        }
        for entry, exit_ in zip(entries, exits, strict=True)
    ]


def backtest_tables(hourly: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Backtests, trades and equity of a few parameter sets on the hourly bars, with a one-fold
    walk-forward per strategy."""
    start, end = hourly["open_time"].iloc[0], hourly["open_time"].iloc[-1]
    results, trades, equity = [], [], []
    for number, (strategy, params, selected) in enumerate(STRATEGIES):
        for sample in ("full", "in_sample", "out_of_sample"):
            results.append(_result(strategy, params, sample, start, end, number, selected))
            if selected:
                trades += _trades(strategy, params, sample, hourly, number)
                equity += _equity(strategy, params, sample, start, end, number)
    fold = pd.Timestamp("2024-01-02")
    hold = WALK_FORWARD["buy_and_hold"][0]
    for number, (strategy, (total, sharpe, count)) in enumerate(WALK_FORWARD.items()):
        pick = next(text for name, text, chosen in STRATEGIES if name == strategy and chosen)
        params = json.dumps({"2024-01-02": json.loads(pick)})
        row = _result(strategy, params, "walk_forward", fold, end, number, True)
        row |= {"total_return": total, "sharpe": sharpe, "trades": count}
        results.append(row | {"excess_return": total - hold, "position_size": None})
        equity += _equity(strategy, params, "walk_forward", fold, end, number)
        if count:
            trades += _trades(strategy, params, "walk_forward", hourly, number)
    return {
        "btcusdt_backtests": pd.DataFrame(results),
        "btcusdt_backtest_trades": pd.DataFrame(trades),
        "btcusdt_backtest_equity": pd.DataFrame(equity),
    }


def analytics_tables(base: pd.DataFrame) -> dict[str, pd.DataFrame]:
    hourly = bars(base, "1h")
    daily = bars(base, "1D")
    return {
        "btcusdt_1h": hourly,
        "btcusdt_4h": bars(base, "4h"),
        "btcusdt_1d": daily,
        "btcusdt_indicators_1h": indicators(hourly),
        "btcusdt_indicators_1d": indicators(daily),
        "btcusdt_levels": levels(base),
        "btcusdt_volume_profile": volume_profile(base),
        **backtest_tables(hourly),
    }


def write_tables(database: Path, tables: dict[str, pd.DataFrame]) -> None:
    with duckdb.connect(str(database)) as connection:
        for name, frame in tables.items():
            connection.register("frame", frame)
            connection.execute(f"CREATE OR REPLACE TABLE {SCHEMA}.{name} AS SELECT * FROM frame")
            connection.unregister("frame")
