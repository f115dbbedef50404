"""A clock tests share between the Binance stand-in and the client, so waits cost no real time."""

from crypto_assets.klines.resources import BinanceResource
from crypto_assets.sources.binance_rest import BinanceKlinesClient
from crypto_assets.sources.pacing import RetryPolicy, WeightPacer


class FakeClock:
    """Seconds since the epoch that only move when someone sleeps (or a test moves them)."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


SHARED = FakeClock()
"""The clock SharedClockBinance clients sleep on; a test resets it before use."""


class SharedClockBinance(BinanceResource):
    """The Binance resource whose clients pause on ``SHARED``: a run that waits out an outage
    of a minute takes milliseconds, against a stand-in whose wall clock is the same clock."""

    def get_client(self, retry: RetryPolicy | None = None) -> BinanceKlinesClient:
        return BinanceKlinesClient(
            base_url=self.base_url,
            timeout=self.timeout_seconds,
            retry=retry,
            pacer=WeightPacer(clock=SHARED, sleep=SHARED.sleep),
            sleep=SHARED.sleep,
        )
