"""The backtest engine: no look-ahead, fees and slippage to the cent, stops and targets filled
inside the bar, sizing, risk on every bar, metrics against closed forms, and parity with
backtesting.py on the capstone's hourly bars (test-only, AGPL)."""

import math
import statistics
import warnings

import numpy as np
import pandas as pd
import pytest
from backtesting import Backtest, Strategy

from crypto_assets.analytics.backtest import Costs, Exits, Prices, positions_from_signal, run
from crypto_assets.analytics.strategies import SIGNALS, held_positions
from crypto_assets_tests.analytics_data import warehouse_candles
from crypto_assets_tests.binance_standin.data import load_klines_csv, shared_data_dir

FEE, SLIP = 0.001, 0.0005
COSTS = Costs(fee_bps=10, slippage_bps=5)
FREE = Costs(fee_bps=0, slippage_bps=0)
DAY = pd.Timedelta(days=1)


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


def ohlc_bars(rows: list[tuple[float, float, float, float]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["open", "high", "low", "close"])
    return frame.assign(open_time=pd.date_range("2024-01-01", periods=len(rows), freq="D"))


def random_bars(count: int, seed: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0.0005, 0.03, count)))
    open_ = np.concatenate([[100.0], close[:-1]]) * np.exp(rng.normal(0, 0.002, count))
    frame = hand_bars(list(open_), list(close))
    frame["high"] *= 1.01
    frame["low"] *= 0.99
    return frame


def daily(bars: pd.DataFrame) -> Prices:
    return Prices.of(bars, DAY)


def test_fees_and_slippage_are_applied_exactly() -> None:
    bars = hand_bars([100, 110, 120, 130], [105, 115, 125, 135])
    result = run(daily(bars), np.array([False, True, True, False]), COSTS)
    buy, sell = 110 * (1 + SLIP), 130 * (1 - SLIP)
    units = 1 / (buy * (1 + FEE))
    assert result.equity.tolist() == pytest.approx(
        [1.0, units * 115, units * 125, units * sell * (1 - FEE)], rel=1e-14
    )
    trade = result.trades.iloc[0]
    assert (trade.entry_price, trade.exit_price) == pytest.approx((buy, sell), rel=1e-15)
    assert trade.entry_time == pd.Timestamp("2024-01-02")
    assert trade.exit_time == pd.Timestamp("2024-01-04")
    assert (trade.exit_reason, trade.bars_held) == ("signal", 2)
    assert trade.trade_return == pytest.approx(sell * (1 - FEE) / (buy * (1 + FEE)) - 1)


def test_buy_and_hold_buys_the_first_open_and_sells_the_last_close() -> None:
    bars = hand_bars([100, 110, 120, 130], [105, 115, 125, 135])
    result = run(daily(bars), held_positions("buy_and_hold", {}, bars["close"].to_numpy()), COSTS)
    expected = 135 * (1 - SLIP) * (1 - FEE) / (100 * (1 + SLIP) * (1 + FEE))
    assert result.equity.iloc[-1] == pytest.approx(expected, rel=1e-14)
    assert result.trades["exit_time"].tolist() == [pd.Timestamp("2024-01-05")]  # last bar's end
    assert result.trades["exit_reason"].tolist() == ["end_of_sample"]
    assert result.metrics["exposure"] == 1.0


# Long from the first close; flat, long, flat ... so that each run of held bars is one trade.
STOP_BARS = [
    (100, 101, 99, 100),
    (100, 103, 94, 97),  # entry 100, low 94 under the 95 stop: stopped at 95
    (97, 98, 96, 97),  # the signal still asks for long: no re-entry after a stop
    (96, 98, 95, 97),
    (100, 112, 99, 108),  # entry 100, high 112 over the 110 target: out at 110
    (108, 109, 107, 108),
    (100, 101, 97, 99),  # entry 100, neither touched
    (90, 92, 88, 91),  # opened under the stop: out at the open, 90
    (91, 92, 90, 91),
    (100, 111, 94, 105),  # entry 100, both touched: the stop is assumed first
    (105, 106, 104, 105),
    (100, 104, 98, 103),  # entry 100, sold at the last close
]
STOP_SIGNAL = np.array([1, 1, 0, 1, 0, 1, 1, 0, 1, 0, 1, 1], dtype=float)


def test_stops_and_targets_fill_inside_the_bar() -> None:
    exits = Exits(stop_loss_pct=0.05, take_profit_pct=0.10)
    result = run(daily(ohlc_bars(STOP_BARS)), positions_from_signal(STOP_SIGNAL), FREE, exits)
    trades = result.trades
    assert trades["entry_time"].dt.day.tolist() == [2, 5, 7, 10, 12]
    assert trades["exit_time"].dt.day.tolist() == [2, 5, 8, 10, 13]
    assert trades["exit_price"].tolist() == pytest.approx([95, 110, 90, 95, 103], rel=1e-15)
    assert trades["exit_reason"].tolist() == [
        "stop_loss",
        "take_profit",
        "stop_loss",
        "stop_loss",
        "end_of_sample",
    ]
    assert trades["bars_held"].tolist() == [1, 1, 2, 1, 1]
    after = np.cumprod([0.95, 1.1, 0.9, 0.95, 1.03])
    expected = [1, after[0], after[0], after[0], after[1], after[1], after[1] * 0.99]
    expected += [after[2], after[2], after[3], after[3], after[4]]
    np.testing.assert_allclose(result.equity_values, expected, rtol=1e-14)
    profits = [-0.05, 0.95 * 0.1, after[1] * -0.1, after[2] * -0.05, after[3] * 0.03]
    metrics = result.metrics
    assert metrics["profit_factor"] == pytest.approx(
        (profits[1] + profits[4]) / -(profits[0] + profits[2] + profits[3]), rel=1e-12
    )
    assert metrics["avg_trade_return"] == pytest.approx(-0.014, rel=1e-12)
    assert metrics["win_rate"] == 0.4
    assert metrics["avg_bars_held"] == pytest.approx(1.2)
    assert metrics["max_consecutive_losses"] == 2
    assert metrics["exposure"] == 0.5  # 6 of 12 bars
    assert metrics["trades"] == 5


def test_position_size_spends_a_fraction_of_the_equity() -> None:
    exits = Exits(stop_loss_pct=0.05, take_profit_pct=0.10, position_size=0.5)
    result = run(daily(ohlc_bars(STOP_BARS)), positions_from_signal(STOP_SIGNAL), COSTS, exits)
    entry = 100 * (1 + SLIP)
    buy = entry * (1 + FEE)
    fills = [entry * 0.95, entry * 1.1, 90, entry * 0.95, 103]  # levels from the entry fill
    growth = [0.5 + 0.5 * fill * (1 - SLIP) * (1 - FEE) / buy for fill in fills]
    assert result.equity_values[-1] == pytest.approx(math.prod(growth), rel=1e-13)
    # Marked at the close while long: half in cash, half in coins bought at the entry fill.
    marked = math.prod(growth[:2]) * (0.5 + 0.5 * 99 / buy)
    assert result.equity_values[6] == pytest.approx(marked, rel=1e-13)


def test_metrics_equal_their_closed_forms() -> None:
    closes = [110.0, 104.5, 114.95, 109.2025]  # +10%, -5%, +10%, -5% a day
    bars = hand_bars([100.0, *closes[:-1]], closes)
    result = run(daily(bars), np.ones(4, dtype=bool), FREE)
    returns = [0.1, -0.05, 0.1, -0.05]
    mean, std = statistics.mean(returns), statistics.stdev(returns)
    downside = math.sqrt(sum(min(r, 0) ** 2 for r in returns) / len(returns))
    metrics = result.metrics
    assert metrics["total_return"] == pytest.approx(1.1 * 0.95 * 1.1 * 0.95 - 1, rel=1e-14)
    assert metrics["sharpe"] == pytest.approx(mean / std * math.sqrt(365), rel=1e-12)
    assert metrics["sortino"] == pytest.approx(mean / downside * math.sqrt(365), rel=1e-12)
    assert metrics["max_drawdown"] == pytest.approx(-0.05, rel=1e-12)
    assert metrics["max_drawdown_days"] == 2.0  # the 01-02 close regained at 01-04's
    # Four days are no year: no CAGR and no Calmar.
    assert math.isnan(metrics["cagr"]) and math.isnan(metrics["calmar"])
    assert math.isnan(metrics["profit_factor"])  # no losing trade


@pytest.mark.parametrize(("days", "annualised"), [(89, False), (90, True)])
def test_cagr_and_calmar_need_ninety_days(days: int, annualised: bool) -> None:
    closes = list(100 * 1.001 ** np.arange(1, days + 1))
    closes[10] = closes[9] * 0.9
    bars = hand_bars([100.0, *closes[:-1]], closes)
    metrics = run(daily(bars), np.ones(days, dtype=bool), FREE).metrics
    total = closes[-1] / 100 - 1
    if annualised:
        cagr = (1 + total) ** (365 / 90) - 1
        assert metrics["cagr"] == pytest.approx(cagr, rel=1e-12)
        assert metrics["calmar"] == pytest.approx(cagr / 0.1, rel=1e-9)
    else:
        assert math.isnan(metrics["cagr"]) and math.isnan(metrics["calmar"])


def test_drawdown_days_run_from_the_peak_to_the_close_that_regains_it() -> None:
    closes = [110.0, 99.0, 105.0, 111.0, 100.0]
    bars = hand_bars([100.0, *closes[:-1]], closes)
    metrics = run(daily(bars), np.ones(5, dtype=bool), FREE).metrics
    assert metrics["max_drawdown"] == pytest.approx(99 / 110 - 1, rel=1e-14)
    assert metrics["max_drawdown_days"] == 3.0  # 2024-01-02 close (1.10) to 01-05 (1.11)


def test_hourly_risk_is_measured_on_every_bar_and_sharpe_on_daily_equity() -> None:
    factors = [1.001] * 24 + [0.99] * 12 + [1.0 / 0.99] * 12 + [1.002] * 24
    closes = list(100.0 * np.cumprod(factors))
    bars = hand_bars([100.0, *closes[:-1]], closes, freq="h")
    result = run(Prices.of(bars, pd.Timedelta(hours=1)), np.ones(72, dtype=bool), FREE)
    returns = [1.001**24 - 1, 0.0, 1.002**24 - 1]
    expected = statistics.mean(returns) / statistics.stdev(returns) * math.sqrt(365)
    assert result.metrics["sharpe"] == pytest.approx(expected, rel=1e-9)
    # Day two ends where it started; its noon is 11.4% under: daily closes never see it.
    assert result.metrics["max_drawdown"] == pytest.approx(0.99**12 - 1, rel=1e-12)
    assert result.metrics["max_drawdown_days"] == 1.0


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
    exits = Exits(stop_loss_pct=0.03, take_profit_pct=0.05)
    equity = run(daily(bars), held, COSTS, exits).equity
    equity_changed = run(daily(changed), held_changed, COSTS, exits).equity
    np.testing.assert_array_equal(equity.iloc[: cut + 1], equity_changed.iloc[: cut + 1])


def test_signals_fill_at_the_next_open() -> None:
    held = positions_from_signal(np.array([np.nan, 1.0, 1.0, 0.0, 1.0]))
    assert held.tolist() == [False, False, True, True, False]


@pytest.mark.parametrize(
    ("name", "value"),
    [("stop_loss_pct", 0.0), ("stop_loss_pct", 1.0), ("take_profit_pct", -0.1)],
)
def test_exits_refuse_levels_that_are_no_fraction(name: str, value: float) -> None:
    with pytest.raises(ValueError, match=f"{name} must be a positive fraction"):
        Exits(**{name: value})
    with pytest.raises(ValueError, match="position_size must be in"):
        Exits(position_size=1.5)


@pytest.fixture(scope="module")
def capstone_hourly() -> pd.DataFrame:
    path = shared_data_dir() / "BTCUSDT-1h-2024-01-01_2024-05-11.csv"
    if not path.exists():
        pytest.skip(f"{path} is absent: real Binance klines are not available in this clone")
    return warehouse_candles(load_klines_csv(path), "1h")[
        ["open_time", "open", "high", "low", "close"]
    ]


STOP, TARGET, SIZE = 0.02, 0.04, 0.5


def test_stops_targets_and_sizing_agree_with_backtesting_py(capstone_hourly) -> None:
    bars = capstone_hourly
    close, opens = bars["close"].to_numpy(), bars["open"].to_numpy()
    signal = SIGNALS["sma_cross"](close, fast=10, slow=50)
    signal[-3:] = 1.0  # long at the end: the last trade is closed at the last close
    exits = Exits(stop_loss_pct=STOP, take_profit_pct=TARGET, position_size=SIZE)
    prices = Prices.of(bars, pd.Timedelta(hours=1))
    ours = run(prices, positions_from_signal(signal), Costs(fee_bps=10, slippage_bps=0), exits)
    long = np.nan_to_num(signal) > 0

    class FollowTheSignal(Strategy):
        def init(self) -> None:
            pass

        def next(self) -> None:
            index = len(self.data) - 1
            if self.position and not long[index]:
                for trade in self.trades:  # a signal exit at the next open comes first
                    trade.sl = trade.tp = None
                self.position.close()
            fresh = long[index] and (index == 0 or not long[index - 1])
            if not self.position and fresh and index + 1 < len(opens):
                entry = opens[index + 1]  # the next open, where the order fills
                self.buy(size=SIZE, sl=entry * (1 - STOP), tp=entry * (1 + TARGET))

    # backtesting.py closes what is still open at the open of its last bar; ours sells at the
    # last bar's close. One extra bar opening at that close, after the last, makes them the same.
    last = bars.iloc[-1]
    closing = {"open_time": last["open_time"] + pd.Timedelta(hours=1)}
    closing |= dict.fromkeys(("open", "high", "low", "close"), last["close"])
    data = pd.concat([bars, pd.DataFrame([closing])], ignore_index=True)
    data = data.set_index("open_time").rename(columns=str.capitalize).assign(Volume=1.0)
    long = np.append(long, long[-1])
    cash = 1e15  # whole units of a ~60,000 price: rounding far below 1e-9
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stats = Backtest(
            data, FollowTheSignal, cash=cash, commission=FEE, finalize_trades=True
        ).run()
    theirs = stats["_trades"].sort_values("EntryTime").reset_index(drop=True)
    trades = ours.trades
    assert len(theirs) == len(trades) > 20
    assert set(trades["exit_reason"]) == {"signal", "stop_loss", "take_profit", "end_of_sample"}
    assert theirs["EntryTime"].tolist() == trades["entry_time"].tolist()
    assert theirs["ExitTime"].tolist() == trades["exit_time"].tolist()
    np.testing.assert_allclose(theirs["EntryPrice"], trades["entry_price"], rtol=1e-12)
    np.testing.assert_allclose(theirs["ExitPrice"], trades["exit_price"], rtol=1e-12)
    assert stats["Equity Final [$]"] / cash == pytest.approx(ours.equity.iloc[-1], rel=1e-9)
