"""Every analytics asset, in lineage order, and the sensor that keeps them fresh."""

import dagster as dg

from crypto_assets.analytics.assets import (
    btcusdt_bars,
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
    btcusdt_bars,
    btcusdt_indicators_1h,
    btcusdt_indicators_1d,
    btcusdt_levels,
    btcusdt_volume_profile,
    btcusdt_backtests,
    btcusdt_market_charts,
]

ANALYTICS_SENSOR_INTERVAL_SECONDS = 30

analytics_automation_sensor = dg.AutomationConditionSensorDefinition(
    "analytics_automation_sensor",
    target=dg.AssetSelection.assets(*ANALYTICS_ASSETS),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=ANALYTICS_SENSOR_INTERVAL_SECONDS,
    run_tags={"crypto_assets/lane": "batch"},
    description="Rebuilds the analytics once the warehouse has loaded a day (or a day again):"
    " that day's bars, then the indicators, levels, profile, backtests and charts.",
)
