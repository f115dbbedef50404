"""What the project tracks and where it keeps local data, read once from the environment.

Symbol and interval shape the partitions and the asset definitions, so they are fixed when the
code location loads; a bad value stops the load with a message naming the variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from crypto_assets.sources.binance_rest import INTERVAL_MS, validate_interval, validate_symbol
from crypto_assets.sources.binance_stream import DEFAULT_STREAM_URL
from crypto_assets.sources.stream_messages import stream_url

FIRST_TRADING_DAYS = {"BTCUSDT": "2017-08-17", "ETHUSDT": "2017-08-17"}
DAILY_INTERVALS = tuple(name for name, ms in INTERVAL_MS.items() if INTERVAL_MS["1d"] % ms == 0)
CHECKOUT_DIR = Path(__file__).resolve().parents[1]


class SettingsError(ValueError):
    """An environment variable holds a value the project cannot run with."""


@dataclass(frozen=True)
class KlineSettings:
    symbol: str
    interval: str
    start_date: str

    @property
    def table(self) -> str:
        """The warehouse table: the symbol in lower case, e.g. btcusdt."""
        return self.symbol.lower()


def load_kline_settings(environ: os._Environ[str] | dict[str, str] = os.environ) -> KlineSettings:
    symbol = environ.get("CRYPTO_ASSETS_SYMBOL", "BTCUSDT")
    interval = environ.get("CRYPTO_ASSETS_INTERVAL", "1m")
    try:
        validate_symbol(symbol)
        validate_interval(interval)
    except ValueError as exc:
        raise SettingsError(f"CRYPTO_ASSETS_SYMBOL / CRYPTO_ASSETS_INTERVAL: {exc}") from exc
    if interval not in DAILY_INTERVALS:
        raise SettingsError(
            f"CRYPTO_ASSETS_INTERVAL={interval!r} does not divide a UTC day into whole candles;"
            f" daily partitions need one of {', '.join(DAILY_INTERVALS)}."
        )
    start_date = environ.get("CRYPTO_ASSETS_START_DATE") or FIRST_TRADING_DAYS.get(symbol)
    if start_date is None:
        raise SettingsError(
            f"No first trading day known for {symbol}: set CRYPTO_ASSETS_START_DATE (YYYY-MM-DD)."
        )
    try:
        date.fromisoformat(start_date)
    except ValueError as exc:
        raise SettingsError(f"CRYPTO_ASSETS_START_DATE={start_date!r} is not YYYY-MM-DD.") from exc
    return KlineSettings(symbol=symbol, interval=interval, start_date=start_date)


def env_int(
    name: str,
    default: int,
    minimum: int = 1,
    maximum: int | None = None,
    environ: Mapping[str, str] = os.environ,
) -> int:
    """The whole number in ``name``, or ``default`` when unset or empty: the one parser of every
    number the project reads from the environment, so a typo or a 0 where 0 means nothing stops
    the load with the variable's name instead of a bare ``int()`` error or a busy loop."""
    text = environ.get(name, "").strip()
    if not text:
        return default
    bounds = f"from {minimum}" + (f" to {maximum}" if maximum is not None else " up")
    try:
        value = int(text)
    except ValueError:
        raise SettingsError(f"{name}={text!r}: expected a whole number {bounds}.") from None
    if value < minimum or (maximum is not None and value > maximum):
        raise SettingsError(f"{name}={text!r}: expected a whole number {bounds}.")
    return value


STALENESS_VARIABLE = "CRYPTO_ASSETS_MAX_STALENESS_MINUTES"
DEFAULT_STALENESS_MINUTES = 26 * 60
"""A day plus the daily schedule's margin; minutes when the fresh-data sensor keeps it current."""


def max_staleness(environ: Mapping[str, str] = os.environ) -> timedelta:
    """How old the warehouse's last update may be (the freshness check and the dashboard)."""
    return timedelta(
        minutes=env_int(STALENESS_VARIABLE, DEFAULT_STALENESS_MINUTES, environ=environ)
    )


def environment_name(environ: os._Environ[str] | dict[str, str] = os.environ) -> str:
    name = environ.get("CRYPTO_ASSETS_ENV", "local")
    if name not in ("local", "prod"):
        raise SettingsError(f"CRYPTO_ASSETS_ENV={name!r}: expected 'local' or 'prod'.")
    return name


def autostart(environ: os._Environ[str] | dict[str, str] = os.environ) -> bool:
    """Whether local automation starts by itself: ``crypto-assets platform`` sets
    CRYPTO_ASSETS_AUTOSTART=1. Prod never does: there every automation is turned on by a person."""
    value = environ.get("CRYPTO_ASSETS_AUTOSTART", "")
    if value not in ("", "0", "1"):
        raise SettingsError(f"CRYPTO_ASSETS_AUTOSTART={value!r}: expected 0 or 1.")
    return value == "1" and environment_name(environ) == "local"


def bootstrap_days(environ: Mapping[str, str] = os.environ) -> int:
    """CRYPTO_ASSETS_BOOTSTRAP_DAYS: how many closed days a fresh local platform loads itself."""
    return env_int("CRYPTO_ASSETS_BOOTSTRAP_DAYS", 30, minimum=0, maximum=3_650, environ=environ)


def local_home(environ: os._Environ[str] | dict[str, str] = os.environ) -> Path:
    """Where local runs keep Parquet zones and the DuckDB file (git ignores ./data)."""
    return Path(environ.get("CRYPTO_ASSETS_HOME") or CHECKOUT_DIR / "data").resolve()


def binance_stream_url(environ: os._Environ[str] | dict[str, str] = os.environ) -> str:
    """BINANCE_STREAM_URL, the kline websocket's base (default Binance's own); a URL that is not
    ws:// or wss:// stops here with the variable's name."""
    base_url = (environ.get("BINANCE_STREAM_URL") or DEFAULT_STREAM_URL).rstrip("/")
    try:
        stream_url(base_url, "BTCUSDT", "1m")
    except ValueError as exc:
        raise SettingsError(str(exc)) from exc
    return base_url


KLINES = load_kline_settings()
