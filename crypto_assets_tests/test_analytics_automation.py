"""The analytics follow the warehouse, but not at the fresh-data sensor's pace.

A closed day loaded (the daily run, a backfill) rebuilds its bars and the whole-history analytics
at once; today's minute-by-minute refreshes rebuild today's bars at most every 15 minutes and the
whole-history analytics at most hourly. Evaluated with Dagster's own automation evaluator on a
controlled clock, from materializations recorded in a real instance.
"""

from datetime import datetime, timedelta, timezone

import dagster as dg
import pytest

from crypto_assets.analytics.definitions import ANALYTICS_ASSETS
from crypto_assets.definitions import defs
from crypto_assets.klines.assets import snowflake_btcusdt

TODAY = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
TODAY_KEY = TODAY.strftime("%Y-%m-%d")
YESTERDAY_KEY = (TODAY - timedelta(days=1)).strftime("%Y-%m-%d")
BARS = dg.AssetKey("btcusdt_bars")
BACKTESTS = dg.AssetKey("btcusdt_backtests")
INDICATORS_1H = dg.AssetKey("btcusdt_indicators_1h")


class Automation:
    """The analytics' automation conditions evaluated tick by tick, keeping the cursor."""

    def __init__(self, instance: dg.DagsterInstance) -> None:
        self.instance = instance
        self.cursor = None

    def tick(self, hour: int, minute: int) -> dg.EvaluateAutomationConditionsResult:
        result = dg.evaluate_automation_conditions(
            defs=defs,
            instance=self.instance,
            asset_selection=dg.AssetSelection.assets(*ANALYTICS_ASSETS),
            evaluation_time=TODAY + timedelta(hours=hour, minutes=minute),
            cursor=self.cursor,
        )
        self.cursor = result.cursor
        return result

    def loaded(self, asset: dg.AssetKey, partition: str) -> None:
        self.instance.report_runless_asset_event(
            dg.AssetMaterialization(asset_key=asset, partition=partition)
        )


@pytest.fixture
def automation():
    with dg.instance_for_test() as instance:
        yield Automation(instance)


def test_todays_refreshes_rebuild_todays_bars_at_most_every_15_minutes(automation):
    automation.tick(10, 1)
    automation.loaded(snowflake_btcusdt.key, TODAY_KEY)
    assert automation.tick(10, 2).get_requested_partitions(BARS) == set()
    assert automation.tick(10, 16).get_requested_partitions(BARS) == {TODAY_KEY}
    automation.loaded(BARS, TODAY_KEY)
    assert automation.tick(10, 17).get_requested_partitions(BARS) == set()
    for minute in (18, 21, 24, 27):  # the sensor's refreshes of today
        automation.loaded(snowflake_btcusdt.key, TODAY_KEY)
        assert automation.tick(10, minute).get_requested_partitions(BARS) == set()
    assert automation.tick(10, 31).get_requested_partitions(BARS) == {TODAY_KEY}


def test_a_closed_day_rebuilds_at_once_todays_bars_only_hourly(automation):
    automation.tick(10, 6)
    automation.loaded(snowflake_btcusdt.key, YESTERDAY_KEY)
    assert automation.tick(10, 7).get_requested_partitions(BARS) == {YESTERDAY_KEY}

    automation.loaded(BARS, YESTERDAY_KEY)
    rebuilt = automation.tick(10, 8)
    assert rebuilt.get_num_requested(BACKTESTS) == 1
    assert rebuilt.get_num_requested(INDICATORS_1H) == 1
    automation.loaded(BACKTESTS, None)
    automation.loaded(INDICATORS_1H, None)
    assert automation.tick(10, 9).get_num_requested(BACKTESTS) == 0

    automation.loaded(BARS, TODAY_KEY)  # a refresh of today's bars, ten minutes later
    assert automation.tick(10, 20).get_num_requested(BACKTESTS) == 0
    assert automation.tick(10, 50).get_num_requested(BACKTESTS) == 0
    assert automation.tick(11, 6).get_num_requested(BACKTESTS) == 1
