"""Bars per timeframe resampled inside the warehouse, in SQL that DuckDB and Snowflake both run.

The candles never leave the warehouse: one ``DELETE`` and one ``INSERT ... SELECT ... GROUP BY``
per timeframe and run range. Every timeframe divides a UTC day, so a day's buckets come only from
that day's candles and a range of days can be replaced on its own.

A bucket is complete (``is_complete``) once the newest candle in the base table has closed at or
after the bucket's end; today's buckets are written but flagged false until then. Gaps in
Binance's data leave a complete bucket with fewer candles, which ``candle_count`` shows.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

TIMEFRAMES: dict[str, timedelta] = {
    "1h": timedelta(hours=1),
    "4h": timedelta(hours=4),
    "1d": timedelta(days=1),
}
DIALECTS = ("duckdb", "snowflake")
SQL_TIME = "%Y-%m-%d %H:%M:%S"
BAR_COLUMNS = (
    "open_time",
    "symbol",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "quote_asset_volume",
    "num_trades",
    "taker_base_vol",
    "taker_quote_vol",
    "candle_count",
    "is_complete",
)


def bucket_start(timeframe: str, dialect: str) -> str:
    """The SQL expression of the bucket a candle's open_time falls in (UTC, naive)."""
    if dialect not in DIALECTS:
        raise ValueError(f"Unknown SQL dialect {dialect!r}; expected one of {DIALECTS}")
    if timeframe == "1h":
        return "date_trunc('hour', open_time)"
    if timeframe == "1d":
        return "date_trunc('day', open_time)"
    if timeframe == "4h":
        # Neither engine's bucket function exists in the other (time_bucket / time_slice).
        if dialect == "snowflake":
            return "dateadd(hour, -(hour(open_time) % 4), date_trunc('hour', open_time))"
        return "date_trunc('hour', open_time) - to_hours(hour(open_time) % 4)"
    raise ValueError(f"Unknown timeframe {timeframe!r}; expected one of {tuple(TIMEFRAMES)}")


def bars_select(
    base_table: str,
    timeframe: str,
    dialect: str,
    start: datetime,
    end: datetime,
    data_end: datetime,
) -> str:
    """SELECT of the timeframe's bars from candles opened in [start, end).

    ``data_end`` is when the newest candle of the base table closes; buckets ending after it are
    marked incomplete.
    """
    if start.time() != datetime.min.time() or end.time() != datetime.min.time():
        raise ValueError(f"Bars are rebuilt by whole UTC days, not {start} .. {end}")
    bucket = bucket_start(timeframe, dialect)
    complete_until = (data_end - TIMEFRAMES[timeframe]).strftime(SQL_TIME)
    return (
        f"select {bucket} as open_time, min(symbol) as symbol,"
        " min_by(open, open_time) as open, max(high) as high, min(low) as low,"
        " max_by(close, open_time) as close, sum(volume) as volume,"
        " sum(quote_asset_volume) as quote_asset_volume,"
        " cast(sum(num_trades) as bigint) as num_trades,"
        " sum(taker_base_vol) as taker_base_vol, sum(taker_quote_vol) as taker_quote_vol,"
        " cast(count(*) as bigint) as candle_count,"
        f" {bucket} <= '{complete_until}' as is_complete"
        f" from {base_table}"
        f" where open_time >= '{start.strftime(SQL_TIME)}'"
        f" and open_time < '{end.strftime(SQL_TIME)}'"
        f" group by {bucket}"
    )


@dataclass(frozen=True)
class BarsRebuild:
    """The statements that replace a range of days of one timeframe's bar table.

    ``create`` runs first, outside the transaction (DDL commits one in Snowflake); ``replace``
    runs in one transaction, so readers see the old range or the new one, never a mix.
    """

    create: str
    replace: tuple[str, str]


def bars_rebuild(
    base_table: str,
    bars_table: str,
    timeframe: str,
    dialect: str,
    start: datetime,
    end: datetime,
    data_end: datetime,
) -> BarsRebuild:
    select = bars_select(base_table, timeframe, dialect, start, end, data_end)
    empty = bars_select(base_table, timeframe, dialect, start, start, data_end)
    columns = ", ".join(BAR_COLUMNS)
    return BarsRebuild(
        create=f"create table if not exists {bars_table} as {empty}",
        replace=(
            f"delete from {bars_table} where open_time >= '{start.strftime(SQL_TIME)}'"
            f" and open_time < '{end.strftime(SQL_TIME)}'",
            f"insert into {bars_table} ({columns}) {select}",
        ),
    )


def bars_written_sql(bars_table: str, start: datetime, end: datetime) -> str:
    """(bars, complete bars) of the table in [start, end)."""
    return (
        f"select count(*), sum(case when is_complete then 1 else 0 end) from {bars_table}"
        f" where open_time >= '{start.strftime(SQL_TIME)}'"
        f" and open_time < '{end.strftime(SQL_TIME)}'"
    )


def newest_open_time_sql(base_table: str) -> str:
    """The newest candle's open time; it closes one interval later (``data_end``)."""
    return f"select max(open_time) from {base_table}"


def complete_bars_sql(bars_table: str, days: int | None = None) -> str:
    """The table's complete bars in time order; with ``days``, only those of the newest days."""
    recent = (
        f" and open_time >= (select max(open_time) from {bars_table}) - interval '{int(days)} days'"
        if days
        else ""
    )
    return f"select * from {bars_table} where is_complete{recent} order by open_time"


def rows_since_sql(table: str, first: datetime) -> str:
    """Rows of a table keyed by open_time, from ``first`` on, in time order."""
    since = first.strftime(SQL_TIME)
    return f"select * from {table} where open_time >= '{since}' order by open_time"
