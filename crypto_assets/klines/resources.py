"""The Binance resource the kline assets and the fresh-data sensor share."""

import os
from collections.abc import Mapping

import dagster as dg
from pydantic import Field

from crypto_assets.settings import SettingsError
from crypto_assets.sources.binance_archive import DEFAULT_ARCHIVE_URL, BinanceArchiveClient
from crypto_assets.sources.binance_rest import DEFAULT_BASE_URL, BinanceKlinesClient
from crypto_assets.sources.pacing import RetryPolicy
from crypto_assets.sources.urls import InsecureUrlError, require_secure_url


class BinanceResource(dg.ConfigurableResource):
    """Binance's public market data API. API keys, if any, stay in the environment."""

    base_url: str = Field(default=DEFAULT_BASE_URL, description="Binance REST base URL.")
    timeout_seconds: float = Field(default=10.0, description="Timeout of every request.")

    def get_client(self, retry: RetryPolicy | None = None) -> BinanceKlinesClient:
        return BinanceKlinesClient(
            base_url=self.base_url, timeout=self.timeout_seconds, retry=retry
        )


class BinanceArchiveResource(dg.ConfigurableResource):
    """Binance's public kline archive; an empty base URL turns it off (REST for every day)."""

    base_url: str = Field(
        default=DEFAULT_ARCHIVE_URL, description="Archive base URL; empty for REST only."
    )
    timeout_seconds: float = Field(default=30.0, description="Timeout of every request.")

    def get_client(self, retry: RetryPolicy | None = None) -> BinanceArchiveClient | None:
        if not self.base_url:
            return None
        return BinanceArchiveClient(
            base_url=self.base_url, timeout=self.timeout_seconds, retry=retry
        )


def binance_resource(environ: Mapping[str, str] = os.environ) -> BinanceResource:
    """BINANCE_BASE_URL, checked when the code location loads (https, or http on loopback)."""
    url = environ.get("BINANCE_BASE_URL") or DEFAULT_BASE_URL
    return BinanceResource(base_url=_checked(url, "BINANCE_BASE_URL"))


def binance_archive_resource(environ: Mapping[str, str] = os.environ) -> BinanceArchiveResource:
    """BINANCE_ARCHIVE_URL, or when unset: Binance's archive if REST is Binance's own API.

    A run pointed at another REST server (a mirror, the tests' stand-in) gets no archive unless
    one is named, so one range never mixes two exchanges' data. Empty turns the archive off.
    """
    if "BINANCE_ARCHIVE_URL" in environ:
        url = environ["BINANCE_ARCHIVE_URL"]
        return BinanceArchiveResource(base_url=url and _checked(url, "BINANCE_ARCHIVE_URL"))
    rest = (environ.get("BINANCE_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
    return BinanceArchiveResource(base_url=DEFAULT_ARCHIVE_URL if rest == DEFAULT_BASE_URL else "")


def _checked(url: str, variable: str) -> str:
    try:
        return require_secure_url(url, variable)
    except InsecureUrlError as exc:
        raise SettingsError(str(exc)) from exc
