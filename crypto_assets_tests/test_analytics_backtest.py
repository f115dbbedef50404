"""The backtest engine: no look-ahead, fees and slippage to the cent, metrics against closed forms,
walk-forward samples that never overlap, and parity with backtesting.py (test-only, AGPL)."""

import math
import statistics

import numpy as np
import pandas as pd
import pytest
from backtesting import Backtest, Strategy

from crypto_assets.analytics.backtest import Costs, positions_from_signal, run
from crypto_assets.analytics.strategies import SIGNALS, grid_results, held_positions, samples

FEE, SLIP = 0.001, 0.0005
COSTS = Costs(fee_bps=10, slippage_bps=5)


def hand_bars(opens: list[float], closes: list[float], freq: str = "D") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "open_time": pd.date_range("2024-01-01", periods=len(opens), freq=freq),
            "open": opens,
            "high": [max(o, c) for o, c in zip(opens, closes, strict=True)],
            "low": [min(o, c) for o, c in zip(opens, closes, strict=True)],
            "close": closes,
        }
    )


def random_bars(count: int, seed: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0.0005, 0.03, count)))
    open_ = np.concatenate([[100.0], close[:-1]]) * np.exp(rng.normal(0, 0.002, count))
    frame = hand_bars(list(open_), list(close))
    frame["high"] *= 1.01
    frame["low"] *= 0.99
    return frame


def test_fees_and_slippage_are_applied_exactly() -> None:
    bars = hand_bars([100, 110, 120, 130], [105, 115, 125, 135])
    result = run(bars, np.array([False, True, True, False]), COSTS)
    buy, sell = 110 * (1 + SLIP), 130 * (1 - SLIP)
    units = 1 / (buy * (1 + FEE))
    assert result.equity.tolist() == pytest.approx(
        [1.0, units * 115, units * 125, units * sell * (1 - FEE)], rel=1e-14
    )
    trade = result.trades.iloc[0]
    assert (trade.entry_price, trade.exit_price) == pytest.approx((buy, sell), rel=1e-15)
    assert trade.entry_time == pd.Timestamp("2024-01-02")
    assert trade.exit_time == pd.Timestamp("2024-01-04")
    assert trade.trade_return == pytest.approx(sell * (1 - FEE) / (buy * (1 + FEE)) - 1)


def test_buy_and_hold_buys_the_first_open_and_sells_the_last_close() -> None:
    bars = hand_bars([100, 110, 120, 130], [105, 115, 125, 135])
    result = run(bars, held_positions("buy_and_hold", {}, bars["close"].to_numpy()), COSTS)
    expected = 135 * (1 - SLIP) * (1 - FEE) / (100 * (1 + SLIP) * (1 + FEE))
    assert result.equity.iloc[-1] == pytest.approx(expected, rel=1e-14)
    assert result.trades["exit_time"].tolist() == [pd.Timestamp("2024-01-05")]  # last bar's end
    assert result.metrics["exposure"] == 1.0


def test_metrics_equal_their_closed_forms() -> None:
    closes = [110.0, 104.5, 114.95, 109.2025]  # +10%, -5%, +10%, -5% a day
    bars = hand_bars([100.0, *closes[:-1]], closes)
    result = run(bars, np.ones(4, dtype=bool), Costs(fee_bps=0, slippage_bps=0))
    returns = [0.1, -0.05, 0.1, -0.05]
    mean, std = statistics.mean(returns), statistics.stdev(returns)
    downside = math.sqrt(sum(min(r, 0) ** 2 for r in returns) / len(returns))
    total = 1.1 * 0.95 * 1.1 * 0.95 - 1
    cagr = (1 + total) ** (365 / 4) - 1
    assert result.metrics == pytest.approx(
        {
            "total_return": total,
            "cagr": cagr,
            "sharpe": mean / std * math.sqrt(365),
            "sortino": mean / downside * math.sqrt(365),
            "max_drawdown": -0.05,
            "calmar": cagr / 0.05,
            "win_rate": 1.0,
            "trades": 1.0,
            "exposure": 1.0,
        },
        rel=1e-12,
    )


def test_hourly_bars_are_measured_on_daily_equity() -> None:
    factors = [1.001] * 24 + [0.9995] * 24 + [1.002] * 24  # three days of hourly moves
    closes = list(100.0 * np.cumprod(factors))
    bars = hand_bars([100.0, *closes[:-1]], closes, freq="h")
    result = run(bars, np.ones(len(closes), dtype=bool), Costs(fee_bps=0, slippage_bps=0))
    returns = [1.001**24 - 1, 0.9995**24 - 1, 1.002**24 - 1]
    assert result.metrics["total_return"] == pytest.approx(math.prod(1 + r for r in returns) - 1)
    expected = statistics.mean(returns) / statistics.stdev(returns) * math.sqrt(365)
    assert result.metrics["sharpe"] == pytest.approx(expected, rel=1e-9)
    assert result.metrics["max_drawdown"] == pytest.approx(0.9995**24 - 1)


@pytest.mark.parametrize("strategy", list(SIGNALS))
def test_changing_future_prices_changes_no_past_signal(strategy: str) -> None:
    bars, cut = random_bars(300), 200
    params = {
        "sma_cross": {"fast": 10, "slow": 50},
        "rsi_reversion": {"period": 14, "oversold": 45, "overbought": 55},
        "macd_cross": {"fast": 12, "slow": 26, "signal": 9},
        "bollinger_breakout": {"period": 20, "deviations": 2.0},
    }[strategy]
    changed = bars.copy()
    shock = np.random.default_rng(9).uniform(0.5, 1.5, len(bars) - cut - 1)
    for column in ("open", "high", "low", "close"):
        changed.loc[cut + 1 :, column] *= shock
    held = held_positions(strategy, params, bars["close"].to_numpy())
    held_changed = held_positions(strategy, params, changed["close"].to_numpy())
    assert held.any()
    # The position through bar cut + 1 was decided on bar cut's close.
    np.testing.assert_array_equal(held[: cut + 2], held_changed[: cut + 2])
    equity = run(bars, held, COSTS).equity
    equity_changed = run(changed, held_changed, COSTS).equity
    np.testing.assert_array_equal(equity.iloc[: cut + 1], equity_changed.iloc[: cut + 1])


def test_signals_fill_at_the_next_open() -> None:
    held = positions_from_signal(np.array([np.nan, 1.0, 1.0, 0.0, 1.0]))
    assert held.tolist() == [False, False, True, True, False]


def test_walk_forward_samples_never_overlap() -> None:
    full, in_sample, out_of_sample = samples(1000)
    assert (full.start, full.end) == (0, 1000)
    assert in_sample.end <= out_of_sample.start and out_of_sample.end == 1000
    assert set(range(in_sample.start, in_sample.end)).isdisjoint(
        range(out_of_sample.start, out_of_sample.end)
    )
    table, _ = grid_results(random_bars(400), "1d", COSTS)
    for _, rows in table.groupby(["strategy", "params"]):
        by_sample = rows.set_index("sample")
        assert by_sample.at["in_sample", "end"] <= by_sample.at["out_of_sample", "start"]
    selected = table[table["selected"] & (table["sample"] == "in_sample")]
    best = table[table["sample"] == "in_sample"].groupby("strategy")["sharpe"].max()
    assert dict(zip(selected["strategy"], selected["sharpe"], strict=True)) == best.to_dict()
    assert set(table["strategy"]) == {"buy_and_hold", *SIGNALS}
    assert (table["fee_bps"] == 10).all() and (table["slippage_bps"] == 5).all()


def test_trades_and_final_equity_agree_with_backtesting_py() -> None:
    bars = random_bars(400, seed=21)
    close = bars["close"].to_numpy()
    signal = SIGNALS["sma_cross"](close, fast=5, slow=20)
    signal[-10:] = 1.0  # long at the end: the last trade is closed at the last close
    ours = run(bars, positions_from_signal(signal), Costs(fee_bps=10, slippage_bps=0))

    class FollowTheSignal(Strategy):
        def init(self) -> None:
            pass

        def next(self) -> None:
            index = len(self.data) - 1
            if signal[index] > 0 and not self.position:
                self.buy(size=1 - 1e-12)  # all in: the largest fraction backtesting.py takes
            elif signal[index] == 0 and self.position:
                self.position.close()

    # backtesting.py closes what is still open at the open of its last bar; ours sells at the
    # last bar's close. One extra bar opening at that close, after the last, makes them the same.
    last = bars.iloc[-1]
    closing = {"open_time": last["open_time"] + pd.Timedelta(days=1)}
    closing |= dict.fromkeys(("open", "high", "low", "close"), last["close"])
    data = pd.concat([bars, pd.DataFrame([closing])], ignore_index=True)
    data = data.set_index("open_time").rename(columns=str.capitalize).assign(Volume=1.0)
    signal = np.append(signal, signal[-1])
    cash = 1e14  # whole units of a ~100 price: rounding far below 1e-9
    stats = Backtest(data, FollowTheSignal, cash=cash, commission=FEE, finalize_trades=True).run()
    theirs = stats["_trades"]
    assert len(theirs) == len(ours.trades) > 5
    assert theirs["EntryTime"].tolist() == ours.trades["entry_time"].tolist()
    assert theirs["ExitTime"].tolist() == ours.trades["exit_time"].tolist()
    np.testing.assert_allclose(theirs["EntryPrice"], ours.trades["entry_price"], rtol=1e-12)
    np.testing.assert_allclose(theirs["ExitPrice"], ours.trades["exit_price"], rtol=1e-12)
    assert stats["Equity Final [$]"] / cash == pytest.approx(ours.equity.iloc[-1], rel=1e-9)
