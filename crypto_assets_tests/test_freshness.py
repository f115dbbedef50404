"""Freshness of snowflake_btcusdt: a fresh table passes, a 27 h old one fails and alerts, and a
stack that never loaded stays silent until its first load was due."""

import json
import time
from datetime import timedelta

import dagster as dg
import pytest

from crypto_assets.automation.alerts import AlertNotifier
from crypto_assets.klines.freshness import freshness_checks, freshness_checks_sensor, max_staleness
from crypto_assets.resources import local_resources
from crypto_assets.settings import SettingsError
from crypto_assets_tests.lineage import LINEAGE
from crypto_assets_tests.test_operating_loop import alert_tick
from crypto_assets_tests.webhook_receiver import WebhookReceiver

HOUR = 3600.0
FRESHNESS_CHECK = dg.AssetCheckKey(dg.AssetKey("snowflake_btcusdt"), "freshness_check")


def loaded(instance: dg.DagsterInstance, hours_ago: float) -> None:
    """A load of the warehouse table whose update time is ``hours_ago`` in the past."""
    instance.report_runless_asset_event(
        dg.AssetMaterialization(
            asset_key="snowflake_btcusdt",
            partition="2024-01-02",
            metadata={
                "dagster/last_updated_timestamp": dg.MetadataValue.timestamp(
                    time.time() - hours_ago * HOUR
                )
            },
        )
    )


def evaluate_freshness(instance: dg.DagsterInstance, home) -> dg.AssetCheckEvaluation:
    result = dg.materialize(
        [*freshness_checks, *LINEAGE],
        resources=local_resources({"CRYPTO_ASSETS_HOME": str(home)}),
        instance=instance,
        selection=dg.AssetSelection.checks(*freshness_checks),
        raise_on_error=False,
    )
    (evaluation,) = result.get_asset_check_evaluations()
    return evaluation


def test_a_warehouse_loaded_an_hour_ago_is_fresh(instance, tmp_path):
    loaded(instance, hours_ago=1)
    evaluation = evaluate_freshness(instance, tmp_path)
    assert evaluation.passed
    assert "The last update was 1 hour" in evaluation.description


def test_a_warehouse_loaded_27_hours_ago_is_stale_and_alerts(instance, tmp_path):
    loaded(instance, hours_ago=27)
    evaluation = evaluate_freshness(instance, tmp_path)
    assert not evaluation.passed
    assert "The last update was 1 day" in evaluation.description
    with WebhookReceiver() as receiver:
        alert_tick(instance, AlertNotifier(webhook_url=receiver.url))
    assert [(b["asset"], b["check"], b["severity"]) for b in receiver.bodies] == [
        ("snowflake_btcusdt", "freshness_check", "WARN")
    ]


def sensor_tick(instance: dg.DagsterInstance, cursor: str | None):
    context = dg.build_sensor_context(instance=instance, cursor=cursor)
    return freshness_checks_sensor(context), context.cursor


def test_a_new_stack_is_not_alerted_before_its_first_load_was_due(instance):
    first, cursor = sensor_tick(instance, None)
    assert isinstance(first, dg.SkipReason)
    assert "never been loaded; its first load is due by" in first.skip_message
    watching_since = json.loads(cursor)["watching_since"]
    assert abs(watching_since - time.time()) < 60

    # the same stack 26 h 1 min later (default CRYPTO_ASSETS_MAX_STALENESS_MINUTES = 1560)
    overdue = json.dumps({"watching_since": watching_since - (26 * HOUR + 60)})
    late, _ = sensor_tick(instance, overdue)
    assert isinstance(late, dg.RunRequest)
    assert list(late.asset_check_keys) == [FRESHNESS_CHECK]


def test_once_loaded_the_sensor_checks_freshness_at_once(instance):
    loaded(instance, hours_ago=0)
    request, _ = sensor_tick(instance, None)
    assert isinstance(request, dg.RunRequest)
    assert list(request.asset_check_keys) == [FRESHNESS_CHECK]


@pytest.mark.parametrize(("value", "minutes"), [(None, 1560), ("90", 90)])
def test_max_staleness_comes_from_the_environment(value, minutes):
    environ = {} if value is None else {"CRYPTO_ASSETS_MAX_STALENESS_MINUTES": value}
    assert max_staleness(environ) == timedelta(minutes=minutes)


@pytest.mark.parametrize("value", ["a day", "0", "-5"])
def test_a_bad_max_staleness_is_refused_naming_the_variable(value):
    with pytest.raises(SettingsError, match="CRYPTO_ASSETS_MAX_STALENESS_MINUTES"):
        max_staleness({"CRYPTO_ASSETS_MAX_STALENESS_MINUTES": value})
