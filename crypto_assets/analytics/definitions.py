"""Every analytics asset, in lineage order, for definitions.py and the analytics command."""

from crypto_assets.analytics.assets import (
    btcusdt_1d,
    btcusdt_1h,
    btcusdt_4h,
    btcusdt_indicators_1d,
    btcusdt_indicators_1h,
)
from crypto_assets.analytics.backtest_assets import btcusdt_backtests
from crypto_assets.analytics.structure_assets import (
    btcusdt_levels,
    btcusdt_market_charts,
    btcusdt_volume_profile,
)

ANALYTICS_ASSETS = [
    btcusdt_1h,
    btcusdt_4h,
    btcusdt_1d,
    btcusdt_indicators_1h,
    btcusdt_indicators_1d,
    btcusdt_levels,
    btcusdt_volume_profile,
    btcusdt_backtests,
    btcusdt_market_charts,
]
