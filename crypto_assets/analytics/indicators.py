"""Pure pandas market analytics over daily bars: returns, moving averages, MACD, RSI, volatility.

Daily bars come from the warehouse (``daily_bars_sql``, which DuckDB and Snowflake both run),
so the indicators read a few thousand rows, not millions of candles.
"""

import numpy as np
import pandas as pd

DAYS_PER_YEAR = 365  # crypto trades every day
INDICATOR_COLUMNS = (
    "day",
    "symbol",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "quote_asset_volume",
    "num_trades",
    "candle_count",
    "daily_return",
    "sma_7",
    "sma_30",
    "ema_12",
    "ema_26",
    "macd",
    "macd_signal",
    "rsi_14",
    "volatility_30d",
)


def daily_bars_sql(table: str, history_days: int) -> str:
    """One row per UTC day over the (schema-qualified) table's newest ``history_days`` days, in
    SQL that DuckDB and Snowflake both run."""
    return (
        "select cast(open_time as date) as day, min(symbol) as symbol,"
        " min_by(open, open_time) as open, max(high) as high, min(low) as low,"
        " max_by(close, open_time) as close, sum(volume) as volume,"
        " sum(quote_asset_volume) as quote_asset_volume, sum(num_trades) as num_trades,"
        " count(*) as candle_count"
        f" from {table} where open_time >="
        f" (select max(open_time) from {table}) - interval '{int(history_days)} days'"
        " group by 1 order by 1"
    )


def rsi(close: pd.Series, window: int = 14) -> pd.Series:
    """Wilder's relative strength index, seeded with the simple average of the first window.

    RSI = 100 - 100 / (1 + average gain / average loss); no losses at all gives 100.
    """
    change = close.diff().to_numpy()
    gains, losses = np.clip(change, 0, None), np.clip(-change, 0, None)
    values = np.full(len(close), np.nan)
    if len(close) > window:
        average_gain, average_loss = gains[1 : window + 1].mean(), losses[1 : window + 1].mean()
        values[window] = _rsi(average_gain, average_loss)
        for position in range(window + 1, len(close)):
            average_gain = (average_gain * (window - 1) + gains[position]) / window
            average_loss = (average_loss * (window - 1) + losses[position]) / window
            values[position] = _rsi(average_gain, average_loss)
    return pd.Series(values, index=close.index)


def _rsi(average_gain: float, average_loss: float) -> float:
    if average_loss == 0:
        return 100.0 if average_gain > 0 else 50.0
    return 100 - 100 / (1 + average_gain / average_loss)


def daily_indicators(bars: pd.DataFrame) -> pd.DataFrame:
    """Daily bars with the indicators traders look at first; early rows are empty until the
    window fills."""
    frame = bars.sort_values("day").reset_index(drop=True).copy()
    frame["day"] = pd.to_datetime(frame["day"])
    close = frame["close"].astype("float64")
    frame["daily_return"] = close.pct_change()
    frame["sma_7"] = close.rolling(7).mean()
    frame["sma_30"] = close.rolling(30).mean()
    frame["ema_12"] = close.ewm(span=12, adjust=False, min_periods=12).mean()
    frame["ema_26"] = close.ewm(span=26, adjust=False, min_periods=26).mean()
    frame["macd"] = frame["ema_12"] - frame["ema_26"]
    frame["macd_signal"] = frame["macd"].ewm(span=9, adjust=False, min_periods=9).mean()
    frame["rsi_14"] = rsi(close)
    log_returns = np.log(close / close.shift())
    frame["volatility_30d"] = log_returns.rolling(30).std() * np.sqrt(DAYS_PER_YEAR)
    return frame[list(INDICATOR_COLUMNS)]


def summary_markdown(indicators: pd.DataFrame, days: int = 14) -> str:
    """The last ``days`` rows as a Markdown table for the Dagster UI."""
    recent = indicators.tail(days)[["day", "close", "daily_return", "sma_30", "rsi_14"]].copy()
    recent["day"] = recent["day"].dt.strftime("%Y-%m-%d")
    header = "| day | close | return | SMA 30 | RSI 14 |\n|---|---:|---:|---:|---:|\n"
    rows = "".join(
        f"| {row.day} | {row.close:,.2f} | {_pct(row.daily_return)} | {_num(row.sma_30)} |"
        f" {_num(row.rsi_14, 1)} |\n"
        for row in recent.itertuples()
    )
    return header + rows


def _pct(value: float) -> str:
    return "" if pd.isna(value) else f"{value:+.2%}"


def _num(value: float, digits: int = 2) -> str:
    return "" if pd.isna(value) else f"{value:,.{digits}f}"
