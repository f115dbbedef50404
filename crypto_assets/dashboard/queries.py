"""What the page reads, as SQL that DuckDB and Snowflake both run (only the time bucket differs).

Each ``read_*`` opens one short read session, runs its few queries and returns plain frames, so
the warehouse file is held for a fraction of a second per refresh. Nothing here writes.
Never more than ``MAX_CANDLES`` candles leave the warehouse: a range that would hold more is
resampled in SQL to the next coarser timeframe, and the view says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

import pandas as pd

from crypto_assets.dashboard.connection import Session, Warehouse
from crypto_assets.sources.binance_rest import INTERVAL_MS

TIMEFRAME_MINUTES = {"1m": 1, "15m": 15, "1h": 60, "4h": 240, "1d": 1440}
BAR_TABLE_TIMEFRAMES = ("1h", "4h", "1d")
INDICATOR_TIMEFRAMES = ("1h", "1d")
MAX_CANDLES = 10_080
"""About 10,000 candles reach the browser at most: exactly a week of 1m."""
CANDLE_COLUMNS = "open, high, low, close, volume, taker_base_vol, num_trades"


def base_minutes(interval: str) -> int:
    """Minutes in one of the warehouse's candles. The page's timeframes and the health tab's
    counts are whole minutes, so a sub-minute interval (1s) is refused rather than drawn as 1m."""
    milliseconds = INTERVAL_MS[interval]
    if milliseconds % 60_000:
        raise ValueError(
            f"CRYPTO_ASSETS_INTERVAL={interval!r}: the dashboard draws candles of one minute or"
            " more; load 1m candles for it (the pipeline itself handles 1s)."
        )
    return milliseconds // 60_000


def offered_timeframes(base_minutes: int) -> list[str]:
    """The timeframes the page offers over candles of ``base_minutes``: whole multiples of the
    stored interval only, so a 1h warehouse never shows 1h candles labelled 15m."""
    return [
        timeframe
        for timeframe, minutes in TIMEFRAME_MINUTES.items()
        if minutes >= base_minutes and minutes % base_minutes == 0
    ]


def drawable_timeframe(timeframe: str, base_minutes: int) -> str:
    """``timeframe`` if the stored candles can make it, else the finest offered one above it
    (a 1h backtest's trades over 4h candles are drawn on 4h candles, labelled so)."""
    offered = offered_timeframes(base_minutes)
    minutes = TIMEFRAME_MINUTES.get(timeframe, TIMEFRAME_MINUTES["1d"])
    return next((name for name in offered if TIMEFRAME_MINUTES[name] >= minutes), offered[-1])


def table_names(symbol_table: str) -> dict[str, str]:
    """The contract's table names for one symbol (e.g. btcusdt -> btcusdt_indicators_1h)."""
    names = {"base": symbol_table}
    for timeframe in BAR_TABLE_TIMEFRAMES:
        names[f"bars_{timeframe}"] = f"{symbol_table}_{timeframe}"
    for timeframe in INDICATOR_TIMEFRAMES:
        names[f"indicators_{timeframe}"] = f"{symbol_table}_indicators_{timeframe}"
    for kind in ("levels", "volume_profile", "backtests", "backtest_trades", "backtest_equity"):
        names[kind] = f"{symbol_table}_{kind}"
    return names


def bucket_sql(dialect: str, minutes: int, column: str) -> str:
    """The bucket start of ``column`` for buckets of ``minutes``, aligned to midnight UTC."""
    if dialect == "snowflake":
        return f"TIME_SLICE({column}, {int(minutes)}, 'MINUTE')"
    return f"time_bucket(INTERVAL '{int(minutes)} minutes', {column})"


@dataclass(frozen=True)
class Quote:
    """The newest candle: what the page header shows."""

    open_time: pd.Timestamp
    close_time: pd.Timestamp
    close: float
    close_24h_ago: float | None
    first_open_time: pd.Timestamp
    candles: int

    @property
    def change_24h(self) -> float | None:
        return None if not self.close_24h_ago else self.close / self.close_24h_ago - 1


@dataclass
class CandlePlan:
    """Which timeframe the chart shows, where it comes from, and why if not what was asked."""

    asked: str
    timeframe: str
    source: str
    notes: list[str] = field(default_factory=list)


@dataclass
class MarketView:
    tables: set[str]
    quote: Quote | None
    plan: CandlePlan | None = None
    candles: pd.DataFrame | None = None
    indicators: pd.DataFrame | None = None
    indicator_timeframe: str | None = None
    levels: pd.DataFrame | None = None
    volume_profile: pd.DataFrame | None = None
    start: datetime | None = None
    end: datetime | None = None


class MarketQueries:
    """The dashboard's reads for one symbol's tables in one warehouse."""

    def __init__(
        self,
        warehouse: Warehouse,
        symbol_table: str,
        base_minutes: int = 1,
        max_candles: int = MAX_CANDLES,
    ) -> None:
        self.warehouse = warehouse
        self.names = table_names(symbol_table)
        self.base_minutes = base_minutes
        self.max_candles = max_candles

    def qualified(self, name: str) -> str:
        return f"{self.warehouse.schema}.{self.names[name]}"

    def tables(self, session: Session) -> set[str]:
        """Which of the contract's tables exist (names as in ``table_names``' keys). Views do
        not count: in Snowflake, sql/05_views.sql's BTCUSDT_1H/1D views have other columns."""
        found = session.frame(
            "SELECT table_name FROM information_schema.tables"
            " WHERE lower(table_schema) = ? AND table_type = 'BASE TABLE'",
            [self.warehouse.schema.lower()],
        )
        present = {str(name).lower() for name in found["table_name"]}
        return {key for key, name in self.names.items() if name in present}

    def quote(self, session: Session) -> Quote | None:
        base = self.qualified("base")
        extent = session.frame(f"SELECT MIN(open_time) AS first, COUNT(*) AS n FROM {base}")
        if extent.empty or int(extent["n"].iloc[0]) == 0:
            return None
        newest = session.frame(
            f"SELECT open_time, close_time, close FROM {base} ORDER BY open_time DESC LIMIT 1"
        ).iloc[0]
        open_time = pd.Timestamp(newest["open_time"])
        before = session.frame(
            f"SELECT close FROM {base} WHERE open_time <= ? ORDER BY open_time DESC LIMIT 1",
            [(open_time - timedelta(hours=24)).to_pydatetime()],
        )
        return Quote(
            open_time=open_time,
            close_time=pd.Timestamp(newest["close_time"]),
            close=float(newest["close"]),
            close_24h_ago=float(before["close"].iloc[0]) if len(before) else None,
            first_open_time=pd.Timestamp(extent["first"].iloc[0]),
            candles=int(extent["n"].iloc[0]),
        )

    def plan(self, timeframe: str, start: datetime, end: datetime, tables: set[str]) -> CandlePlan:
        """The finest timeframe at or above the one asked that keeps the range under
        MAX_CANDLES, read from a bar table when there is one."""
        order = offered_timeframes(self.base_minutes)
        if timeframe not in order:
            raise ValueError(
                f"{timeframe} candles cannot be drawn from {self.base_minutes}-minute candles;"
                f" offered: {', '.join(order)}"
            )
        span_minutes = max((end - start).total_seconds() / 60, 1)
        chosen = timeframe
        for candidate in order[order.index(timeframe) :]:
            chosen = candidate
            if span_minutes / TIMEFRAME_MINUTES[candidate] <= self.max_candles:
                break
        plan = CandlePlan(asked=timeframe, timeframe=chosen, source="base")
        if chosen != timeframe:
            candles = int(span_minutes / TIMEFRAME_MINUTES[timeframe])
            plan.notes.append(
                f"Showing {chosen} candles: {timeframe} over this range would be {candles:,}"
                f" candles, over the {self.max_candles:,} the page draws."
            )
        if chosen in BAR_TABLE_TIMEFRAMES:
            if f"bars_{chosen}" in tables:
                plan.source = f"bars_{chosen}"
            else:
                plan.notes.append(
                    f"Table {self.names[f'bars_{chosen}']} is missing, so {chosen} candles are"
                    " resampled from the base table: run `crypto-assets analytics`."
                )
        return plan

    def candles(
        self, session: Session, plan: CandlePlan, start: datetime, end: datetime
    ) -> pd.DataFrame:
        minutes = TIMEFRAME_MINUTES[plan.timeframe]
        window = [start, end]
        if plan.source != "base":
            return session.frame(
                f"SELECT open_time, {CANDLE_COLUMNS}, candle_count"
                f" FROM {self.qualified(plan.source)}"
                " WHERE open_time >= ? AND open_time < ? ORDER BY open_time",
                window,
            )
        if minutes <= self.base_minutes:
            return session.frame(
                f"SELECT open_time, {CANDLE_COLUMNS}, 1 AS candle_count"
                f" FROM {self.qualified('base')}"
                " WHERE open_time >= ? AND open_time < ? ORDER BY open_time",
                window,
            )
        bucket = bucket_sql(self.warehouse.dialect, minutes, "open_time")
        return session.frame(
            "SELECT bucket AS open_time, MIN_BY(open, candle_time) AS open, MAX(high) AS high,"
            " MIN(low) AS low, MAX_BY(close, candle_time) AS close, SUM(volume) AS volume,"
            " SUM(taker_base_vol) AS taker_base_vol, SUM(num_trades) AS num_trades,"
            " COUNT(*) AS candle_count"
            f" FROM (SELECT {bucket} AS bucket, open_time AS candle_time, {CANDLE_COLUMNS}"
            f" FROM {self.qualified('base')} WHERE open_time >= ? AND open_time < ?) candles"
            " GROUP BY bucket ORDER BY bucket",
            window,
        )

    def indicator_timeframe(self, timeframe: str, start: datetime, end: datetime) -> str:
        hours = (end - start).total_seconds() / 3600
        return "1h" if timeframe != "1d" and hours <= self.max_candles else "1d"

    def read_market(
        self,
        timeframe: str,
        lookback: timedelta | None = None,
        custom: tuple[date, date] | None = None,
    ) -> MarketView:
        """Everything the Market tab draws, in one read session. The range is ``custom``
        (first and last UTC day), else ``lookback`` back from the newest candle, else all."""
        with self.warehouse.session() as session:
            tables = self.tables(session)
            if "base" not in tables:
                return MarketView(tables=tables, quote=None)
            view = MarketView(tables=tables, quote=self.quote(session))
            if view.quote is None:
                return view
            if custom is not None:
                start = datetime.combine(custom[0], time())
                end = datetime.combine(custom[1], time()) + timedelta(days=1)
            else:
                end = (view.quote.open_time + timedelta(minutes=self.base_minutes)).to_pydatetime()
                start = view.quote.first_open_time.to_pydatetime()
                if lookback is not None:
                    start = max(start, end - lookback)
            view.start, view.end = start, end
            view.plan = self.plan(timeframe, start, end, tables)
            view.candles = _typed(self.candles(session, view.plan, start, end))
            view.indicator_timeframe = self.indicator_timeframe(view.plan.timeframe, start, end)
            name = f"indicators_{view.indicator_timeframe}"
            if name in tables:
                view.indicators = _typed(
                    session.frame(
                        f"SELECT * FROM {self.qualified(name)}"
                        " WHERE open_time >= ? AND open_time < ? ORDER BY open_time",
                        [start, end],
                    )
                )
            if "levels" in tables:
                view.levels = session.frame(f"SELECT * FROM {self.qualified('levels')}")
            if "volume_profile" in tables:
                view.volume_profile = session.frame(
                    f"SELECT * FROM {self.qualified('volume_profile')} ORDER BY price"
                )
            return view

    def read_strategies(self) -> dict[str, Any]:
        """The backtest results with their trades and daily equity (tables present or None)."""
        with self.warehouse.session() as session:
            tables = self.tables(session)
            result: dict[str, Any] = {"tables": tables}
            for name in ("backtests", "backtest_trades", "backtest_equity"):
                result[name] = (
                    _typed(session.frame(f"SELECT * FROM {self.qualified(name)}"))
                    if name in tables
                    else None
                )
            return result

    def read_prices(self, timeframe: str, start: datetime, end: datetime) -> pd.DataFrame:
        """Candles for the strategy chart, coarsened like the market chart."""
        with self.warehouse.session() as session:
            tables = self.tables(session)
            plan = self.plan(drawable_timeframe(timeframe, self.base_minutes), start, end, tables)
            return _typed(self.candles(session, plan, start, end))

    def read_recent(self, start: datetime, end: datetime) -> pd.DataFrame:
        """Base candles in [start, end) for the live chart; none when the table is missing."""
        with self.warehouse.session() as session:
            tables = self.tables(session)
            if "base" not in tables:
                return pd.DataFrame(columns=["open_time"])
            plan = self.plan("1m", start, end, tables)  # the base table whatever its interval
            return _typed(self.candles(session, plan, start, end))

    def read_daily_counts(self, days: int) -> tuple[Quote | None, pd.DataFrame]:
        """Candles loaded per UTC day over the newest candle's last ``days`` days, with it."""
        with self.warehouse.session() as session:
            if "base" not in self.tables(session):
                return None, pd.DataFrame(columns=["trading_day", "candles"])
            quote = self.quote(session)
            if quote is None:
                return None, pd.DataFrame(columns=["trading_day", "candles"])
            start = (quote.open_time.normalize() - timedelta(days=days)).to_pydatetime()
            counts = session.frame(
                "SELECT CAST(open_time AS DATE) AS trading_day, COUNT(*) AS candles"
                f" FROM {self.qualified('base')} WHERE open_time >= ?"
                " GROUP BY CAST(open_time AS DATE) ORDER BY trading_day",
                [start],
            )
            return quote, counts


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """Timestamps as pandas datetimes and counts as numbers, whichever warehouse answered."""
    for column in frame.columns:
        if column in ("open_time", "day", "entry_time", "exit_time", "start", "end"):
            frame[column] = pd.to_datetime(frame[column])
        elif frame[column].dtype == object and column not in (
            "strategy",
            "params",
            "timeframe",
            "sample",
            "kind",
            "symbol",
        ):
            converted = pd.to_numeric(frame[column], errors="coerce")
            if converted.notna().sum() == frame[column].notna().sum():
                frame[column] = converted
    return frame
