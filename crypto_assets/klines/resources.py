"""The Binance resource the kline assets and the fresh-data sensor share."""

import os
from collections.abc import Mapping

import dagster as dg
from pydantic import Field

from crypto_assets.sources.binance_rest import DEFAULT_BASE_URL, BinanceKlinesClient
from crypto_assets.sources.pacing import RetryPolicy


class BinanceResource(dg.ConfigurableResource):
    """Binance's public market data API. API keys, if any, stay in the environment."""

    base_url: str = Field(default=DEFAULT_BASE_URL, description="Binance REST base URL.")
    timeout_seconds: float = Field(default=10.0, description="Timeout of every request.")

    def get_client(self, retry: RetryPolicy | None = None) -> BinanceKlinesClient:
        return BinanceKlinesClient(
            base_url=self.base_url, timeout=self.timeout_seconds, retry=retry
        )


def binance_resource(environ: Mapping[str, str] = os.environ) -> BinanceResource:
    return BinanceResource(base_url=environ.get("BINANCE_BASE_URL") or DEFAULT_BASE_URL)
