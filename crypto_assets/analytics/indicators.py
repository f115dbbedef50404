"""Technical indicators on bars, computed by TA-Lib: the reference traders compare against.

Warm-up rows are NaN exactly where TA-Lib puts them (e.g. the first 199 rows of SMA 200, the
first 14 of RSI 14, the first 33 of the MACD signal); they become NULL in the warehouse. Each
contiguous stretch of bars (``series``) is computed on its own, so after a hole of more than a
day every indicator warms up again instead of bridging it.
"""

import numpy as np
import pandas as pd
import talib

from crypto_assets.analytics.series import stretch_ids

PERIODS_PER_YEAR = 365  # crypto trades every day
ONE_DAY = pd.Timedelta(days=1)
INDICATOR_COLUMNS = (
    "open_time",
    "close",
    "sma_20",
    "sma_50",
    "sma_200",
    "ema_12",
    "ema_26",
    "rsi_14",
    "macd",
    "macd_signal",
    "macd_hist",
    "bb_upper",
    "bb_middle",
    "bb_lower",
    "atr_14",
    "obv",
    "taker_buy_ratio",
    "net_taker_volume",
    "volatility_30",
)


def _floats(frame: pd.DataFrame, column: str) -> np.ndarray:
    return frame[column].to_numpy(dtype="float64")


def indicators(
    bars: pd.DataFrame,
    periods_per_year: int = PERIODS_PER_YEAR,
    bar_length: pd.Timedelta = ONE_DAY,
) -> pd.DataFrame:
    """One row per bar (ordered by open_time) with the indicators of INDICATOR_COLUMNS, each
    contiguous stretch of ``bar_length`` bars on its own.

    ``volatility_30`` is the annualised deviation of the last 30 log returns, with
    ``periods_per_year`` bars a year (365 for daily bars, 8760 for hourly ones).
    """
    frame = bars.sort_values("open_time").reset_index(drop=True)
    if frame.empty:
        return _stretch_indicators(frame, periods_per_year)
    ids = stretch_ids(frame["open_time"], bar_length)
    return pd.concat(
        [
            _stretch_indicators(frame[ids == stretch].reset_index(drop=True), periods_per_year)
            for stretch in np.unique(ids)
        ],
        ignore_index=True,
    )


def _stretch_indicators(frame: pd.DataFrame, periods_per_year: int) -> pd.DataFrame:
    high, low, close = _floats(frame, "high"), _floats(frame, "low"), _floats(frame, "close")
    volume, taker_buy = _floats(frame, "volume"), _floats(frame, "taker_base_vol")
    macd, macd_signal, macd_hist = talib.MACD(close, fastperiod=12, slowperiod=26, signalperiod=9)
    bb_upper, bb_middle, bb_lower = talib.BBANDS(
        close, timeperiod=20, nbdevup=2.0, nbdevdn=2.0, matype=talib.MA_Type.SMA
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        taker_buy_ratio = np.where(volume > 0, taker_buy / volume, np.nan)
        log_returns = pd.Series(np.log(close)).diff()
    return pd.DataFrame(
        {
            "open_time": frame["open_time"],
            "close": close,
            "sma_20": talib.SMA(close, timeperiod=20),
            "sma_50": talib.SMA(close, timeperiod=50),
            "sma_200": talib.SMA(close, timeperiod=200),
            "ema_12": talib.EMA(close, timeperiod=12),
            "ema_26": talib.EMA(close, timeperiod=26),
            "rsi_14": talib.RSI(close, timeperiod=14),
            "macd": macd,
            "macd_signal": macd_signal,
            "macd_hist": macd_hist,
            "bb_upper": bb_upper,
            "bb_middle": bb_middle,
            "bb_lower": bb_lower,
            "atr_14": talib.ATR(high, low, close, timeperiod=14),
            "obv": talib.OBV(close, volume),
            "taker_buy_ratio": taker_buy_ratio,
            "net_taker_volume": 2 * taker_buy - volume,
            "volatility_30": log_returns.rolling(30).std().to_numpy() * np.sqrt(periods_per_year),
        }
    )


def latest_values(table: pd.DataFrame) -> dict[str, float]:
    """The newest row's close, RSI, volatility and averages as floats, for Dagster's Plots tab."""
    if table.empty:
        return {}
    latest = table.iloc[-1]
    names = ("close", "rsi_14", "volatility_30", "sma_50", "sma_200", "macd_hist", "atr_14")
    return {name: float(latest[name]) for name in names if pd.notna(latest[name])}


def summary_markdown(table: pd.DataFrame, rows: int = 14) -> str:
    """The last ``rows`` bars as a Markdown table for the Dagster UI."""
    recent = table.tail(rows)
    header = "| open_time | close | RSI 14 | SMA 50 | MACD hist | taker buy |\n"
    header += "|---|---:|---:|---:|---:|---:|\n"
    lines = "".join(
        f"| {pd.Timestamp(row.open_time):%Y-%m-%d %H:%M} | {row.close:,.2f} | {_num(row.rsi_14, 1)}"
        f" | {_num(row.sma_50)} | {_num(row.macd_hist)} | {_num(row.taker_buy_ratio, 3)} |\n"
        for row in recent.itertuples()
    )
    return header + lines


def _num(value: float, digits: int = 2) -> str:
    return "" if pd.isna(value) else f"{value:,.{digits}f}"
