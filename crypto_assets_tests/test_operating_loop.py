"""The operating loop: fresh-data sensor, daily schedule, range backfills, alerts, freshness."""

import json
import logging
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from crypto_assets.automation.alerts import Alert, AlertNotifier, failure_alerts_sensor
from crypto_assets.automation.jobs import kline_lineage_job
from crypto_assets.automation.schedules import daily_klines_schedule
from crypto_assets.automation.sensors import FreshRun, fresh_klines_sensor, plan_fresh_runs
from crypto_assets.klines.freshness import freshness_checks
from crypto_assets.klines.resources import BinanceResource
from crypto_assets.resources import local_resources
from crypto_assets_tests.binance_standin import BinanceStandIn
from crypto_assets_tests.conftest import synthetic_days, utc_ms
from crypto_assets_tests.lineage import CHECKS, LINEAGE, materialize_days
from crypto_assets_tests.webhook_receiver import WebhookReceiver

MINUTE = 60_000
JAN_2 = utc_ms("2024-01-02")


def at(day: str, hours: int, minutes: int, seconds: int = 30) -> int:
    return utc_ms(day) + ((hours * 60 + minutes) * 60 + seconds) * 1000


# -- planning, pure -----------------------------------------------------------------------------


def test_first_tick_refreshes_the_latest_day():
    assert plan_fresh_runs(None, at("2024-01-02", 9, 59, 0), "1m") == [
        FreshRun("2024-01-02", f"2024-01-02@{at('2024-01-02', 9, 59, 0)}", False)
    ]


def test_no_newer_candle_no_run():
    assert plan_fresh_runs(JAN_2, JAN_2, "1m") == []


def test_the_last_candle_of_a_day_makes_the_final_run():
    last = at("2024-01-02", 23, 59, 0)
    assert plan_fresh_runs(last - MINUTE, last, "1m") == [
        FreshRun("2024-01-02", "2024-01-02@final", True)
    ]


def test_crossing_midnight_closes_the_previous_day_once():
    after_midnight = at("2024-01-03", 0, 2, 0)
    assert plan_fresh_runs(at("2024-01-02", 23, 57, 0), after_midnight, "1m") == [
        FreshRun("2024-01-02", "2024-01-02@final", True),
        FreshRun("2024-01-03", f"2024-01-03@{after_midnight}", False),
    ]
    # the final run for 01-02 was already requested when 23:59 closed
    assert [
        run.partition_key
        for run in plan_fresh_runs(at("2024-01-02", 23, 59, 0), after_midnight, "1m")
    ] == ["2024-01-03"]


def test_a_long_outage_catches_up_at_most_a_week():
    runs = plan_fresh_runs(utc_ms("2024-01-01"), at("2024-01-20", 5, 0, 0), "1m")
    assert [run.partition_key for run in runs] == [
        *[f"2024-01-{day:02d}" for day in range(13, 20)],
        "2024-01-20",
    ]


# -- the sensor against the Binance stand-in ----------------------------------------------------


class Clock:
    def __init__(self, now_ms: int) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


@pytest.fixture
def clock() -> Clock:
    return Clock(at("2024-01-02", 10, 0))


@pytest.fixture
def live_standin(clock: Clock):
    with BinanceStandIn(
        {("BTCUSDT", "1m"): synthetic_days("2024-01-01", 3)}, clock_ms=clock
    ) as standin:
        yield standin


def tick(standin: BinanceStandIn, instance: dg.DagsterInstance, cursor: str | None = None):
    context = dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources={"binance": BinanceResource(base_url=standin.url)},
    )
    return fresh_klines_sensor(context), context


def test_sensor_requests_one_run_per_new_candle_with_stable_keys(live_standin, clock, instance):
    result, _ = tick(live_standin, instance)
    assert [(r.partition_key, r.run_key) for r in result.run_requests] == [
        ("2024-01-02", f"2024-01-02@{at('2024-01-02', 9, 59, 0)}")
    ]
    cursor = result.cursor
    assert json.loads(cursor) == {"latest_closed_open_time": at("2024-01-02", 9, 59, 0)}

    again, _ = tick(live_standin, instance, cursor)
    assert isinstance(again, dg.SkipReason)

    clock.now_ms = at("2024-01-02", 10, 3)
    later, _ = tick(live_standin, instance, cursor)
    assert [r.run_key for r in later.run_requests] == [f"2024-01-02@{at('2024-01-02', 10, 2, 0)}"]
    weights = [request["path"] for request in live_standin.requests]
    assert weights.count("/api/v3/klines") == 3 and weights.count("/api/v3/time") == 3


def test_sensor_closes_the_day_at_midnight(live_standin, clock, instance):
    clock.now_ms = at("2024-01-02", 23, 58)
    first, _ = tick(live_standin, instance)
    clock.now_ms = at("2024-01-03", 0, 0)
    closing, _ = tick(live_standin, instance, first.cursor)
    assert [(r.partition_key, r.run_key) for r in closing.run_requests] == [
        ("2024-01-02", "2024-01-02@final")
    ]
    clock.now_ms = at("2024-01-03", 0, 1)
    next_day, _ = tick(live_standin, instance, closing.cursor)
    assert [r.partition_key for r in next_day.run_requests] == ["2024-01-03"]


@pytest.mark.parametrize("fault", ["429", "500"])
def test_sensor_skips_a_tick_when_binance_fails(live_standin, instance, fault):
    live_standin.inject(fault, path="/api/v3/time")
    result, _ = tick(live_standin, instance, json.dumps({"latest_closed_open_time": JAN_2}))
    assert isinstance(result, dg.SkipReason)
    assert fault in result.skip_message


def test_sensor_waits_while_the_days_run_is_in_flight(live_standin, instance):
    instance.add_run(
        dg.DagsterRun(
            job_name=kline_lineage_job.name,
            run_id="0" * 36,
            status=dg.DagsterRunStatus.STARTED,
            tags={"dagster/partition": "2024-01-02"},
        )
    )
    result, _ = tick(live_standin, instance)
    assert isinstance(result, dg.SkipReason)
    assert "in flight" in result.skip_message


@pytest.mark.parametrize("status", [dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED])
def test_a_run_that_died_after_the_candle_closed_does_not_stop_the_next_refresh(
    live_standin, instance, status
):
    """The day's run was created after the 09:59 candle closed (the stand-in's clock says
    2024-01-02 10:00:30) but failed: it loaded nothing, so the sensor must still refresh; a run
    that succeeded read that candle, and the sensor leaves it alone."""

    def add_run(run_id: str, run_status: dg.DagsterRunStatus) -> None:
        instance.add_run(
            dg.DagsterRun(
                job_name=kline_lineage_job.name,
                run_id=run_id,
                status=run_status,
                tags={"dagster/partition": "2024-01-02"},
            )
        )

    add_run("1" * 36, status)
    retry, _ = tick(live_standin, instance)
    assert [(r.partition_key, r.run_key) for r in retry.run_requests] == [
        ("2024-01-02", f"2024-01-02@{at('2024-01-02', 9, 59, 0)}")
    ]
    add_run("2" * 36, dg.DagsterRunStatus.SUCCESS)
    covered, _ = tick(live_standin, instance)
    assert isinstance(covered, dg.SkipReason)
    assert "started after the candle" in covered.skip_message


# -- the schedule -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tick_time",
    [
        datetime(2024, 1, 2, 0, 10, tzinfo=timezone.utc),
        datetime(2024, 1, 2, 1, 10, tzinfo=timezone(timedelta(hours=1))),
    ],
)
def test_schedule_targets_the_day_that_just_closed(tick_time):
    request = daily_klines_schedule(dg.build_schedule_context(scheduled_execution_time=tick_time))
    assert request.partition_key == "2024-01-01"
    assert request.run_key == "daily-2024-01-01"


def test_schedule_runs_daily_after_midnight_utc():
    assert daily_klines_schedule.cron_schedule == "10 0 * * *"
    assert daily_klines_schedule.execution_timezone == "UTC"


# -- backfills ----------------------------------------------------------------------------------


def test_a_31_day_backfill_is_one_run_with_every_row_and_reruns_change_nothing(tmp_path, instance):
    with BinanceStandIn(
        {("BTCUSDT", "1m"): synthetic_days("2024-01-01", 31)},
        clock_ms=lambda: utc_ms("2024-02-01") + 30_000,
    ) as standin:
        resources = local_resources(
            {"CRYPTO_ASSETS_HOME": str(tmp_path), "BINANCE_BASE_URL": standin.url}
        )
        assert materialize_days(resources, "2024-01-01", "2024-01-31", instance=instance).success
        first = warehouse_summary(tmp_path)
        assert materialize_days(resources, "2024-01-01", "2024-01-31", instance=instance).success
    assert first == (31 * 1440, 31 * 1440, 31)
    assert warehouse_summary(tmp_path) == first
    assert len(instance.get_runs()) == 2
    materialized = instance.get_materialized_partitions(dg.AssetKey("snowflake_btcusdt"))
    assert len(materialized) == 31


def warehouse_summary(home: Path) -> tuple:
    with duckdb.connect(str(home / "cryptodb.duckdb"), read_only=True) as connection:
        return connection.execute(
            "select count(*), count(distinct open_time), count(distinct cast(open_time as date))"
            " from cryptodb.cryptoschema.btcusdt"
        ).fetchone()


# -- alerts -------------------------------------------------------------------------------------


def alert_tick(
    instance: dg.DagsterInstance,
    notifier: AlertNotifier,
    cursor: str | None = None,
    log_handler: logging.Handler | None = None,
):
    """One tick of the alert sensor over the project's checks; returns the new cursor.

    ``log_handler`` also receives the tick's log, which Dagster keeps apart from Python's."""
    context = dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        definitions=dg.Definitions(
            assets=LINEAGE,
            asset_checks=[*CHECKS, *freshness_checks],
            resources=local_resources({"CRYPTO_ASSETS_HOME": str(instance.root_directory)}),
        ),
        resources={"notifier": notifier},
    )
    if log_handler is not None:
        context.log.addHandler(log_handler)
    failure_alerts_sensor(context)
    return context.cursor


def test_a_failed_check_alerts_the_webhook_once(
    tmp_path, synthetic_standin, synthetic_rows, instance
):
    bad = list(synthetic_rows[1440 + 100])
    bad[2], bad[3] = bad[3], bad[2]
    synthetic_standin.replace_kline("BTCUSDT", "1m", bad[0], bad)
    resources = local_resources(
        {"CRYPTO_ASSETS_HOME": str(tmp_path), "BINANCE_BASE_URL": synthetic_standin.url}
    )
    assert not materialize_days(resources, "2024-01-02", instance=instance).success

    with WebhookReceiver() as receiver:
        notifier = AlertNotifier(webhook_url=receiver.url, retry_delay_seconds=0.01)
        cursor = alert_tick(instance, notifier)
        alert_tick(instance, notifier, cursor)
    check_alerts = [body for body in receiver.bodies if body["kind"] == "check_failed"]
    run_alerts = [body for body in receiver.bodies if body["kind"] == "run_failed"]
    # high below low breaks both the low and the high rule: one alert each, and one for the run
    assert sorted(alert["check"] for alert in check_alerts) == [
        "high_at_or_above_open_and_close",
        "low_at_or_below_open_and_close",
    ]
    for alert in check_alerts:
        assert alert["asset"] == "clean_klines"
        assert alert["partition"] == "2024-01-02"
        assert alert["severity"] == "ERROR"
        assert alert["offending_open_times"] == ["2024-01-02T01:40:00Z"]
        assert "2024-01-02T01:40:00Z" in alert["text"]
    assert len(run_alerts) == 1
    assert run_alerts[0]["partition"] == "2024-01-02"


def test_a_range_run_alerts_once_per_failed_check_and_records_each_day(
    tmp_path, synthetic_standin, synthetic_rows, instance
):
    bad = list(synthetic_rows[1440 + 100])
    bad[4] = "-1"  # a negative close on 2024-01-02, inside a three-day range
    synthetic_standin.replace_kline("BTCUSDT", "1m", bad[0], bad)
    resources = local_resources(
        {"CRYPTO_ASSETS_HOME": str(tmp_path), "BINANCE_BASE_URL": synthetic_standin.url}
    )
    assert not materialize_days(resources, "2024-01-01", "2024-01-03", instance=instance).success

    check = dg.AssetCheckKey(dg.AssetKey("clean_klines"), "prices_positive")
    per_day = {
        record.partition: record.status.value
        for record in instance.event_log_storage.get_asset_check_execution_history(check, limit=10)
        if record.partition
    }
    assert per_day == {"2024-01-01": "SUCCEEDED", "2024-01-02": "FAILED", "2024-01-03": "SUCCEEDED"}

    with WebhookReceiver() as receiver:
        alert_tick(instance, AlertNotifier(webhook_url=receiver.url, retry_delay_seconds=0.01))
    check_alerts = [body for body in receiver.bodies if body["kind"] == "check_failed"]
    assert {alert["check"] for alert in check_alerts} == {
        "prices_positive",
        "low_at_or_below_open_and_close",
    }
    assert len(check_alerts) == 2
    assert {alert["partition"] for alert in check_alerts} == {"2024-01-01...2024-01-03"}
    assert all(alert["offending_open_times"] == ["2024-01-02T01:40:00Z"] for alert in check_alerts)


def test_a_failing_webhook_is_retried_then_logged_and_the_sensor_moves_on(
    tmp_path, synthetic_standin, synthetic_rows, instance, caplog
):
    bad = list(synthetic_rows[1440 + 5])
    bad[6] += 1
    synthetic_standin.replace_kline("BTCUSDT", "1m", bad[0], bad)
    resources = local_resources(
        {"CRYPTO_ASSETS_HOME": str(tmp_path), "BINANCE_BASE_URL": synthetic_standin.url}
    )
    materialize_days(resources, "2024-01-02", instance=instance)
    with WebhookReceiver(fail_first=1000) as receiver, caplog.at_level(logging.WARNING):
        notifier = AlertNotifier(webhook_url=receiver.url, attempts=3, retry_delay_seconds=0.01)
        cursor = alert_tick(instance, notifier, log_handler=caplog.handler)
        attempts_after_first_tick = receiver.attempts
        alert_tick(instance, notifier, cursor, log_handler=caplog.handler)
    assert attempts_after_first_tick == 2 * 3  # a check alert and a run alert, three attempts each
    assert receiver.attempts == attempts_after_first_tick  # the next tick does not resend them
    assert receiver.bodies == []
    assert caplog.text.count("Alert not delivered to webhook after 3 attempts") == 2
    assert "close_time_matches_interval" in caplog.text


def test_a_delivery_that_recovers_is_sent_once_and_a_lost_one_is_logged(caplog):
    alert = Alert("run_failed", "snowflake_btcusdt", "2024-01-02", "", "ERROR", "run-1", "boom")
    log = logging.getLogger("crypto_assets.test_alerts")
    with WebhookReceiver(fail_first=2) as receiver:
        notifier = AlertNotifier(webhook_url=receiver.url, attempts=3, retry_delay_seconds=0.01)
        assert notifier.send(alert, log) == {"log": True, "webhook": True}
    assert receiver.attempts == 3 and len(receiver.bodies) == 1
    with WebhookReceiver(fail_first=10) as receiver, caplog.at_level(logging.WARNING):
        notifier = AlertNotifier(webhook_url=receiver.url, attempts=2, retry_delay_seconds=0.01)
        assert notifier.send(alert, log) == {"log": True, "webhook": False}
    assert "not delivered to webhook after 2 attempts" in caplog.text
    assert "[ERROR] snowflake_btcusdt [2024-01-02]: run failed" in caplog.text


def test_a_stale_warehouse_fails_freshness_and_alerts(instance, tmp_path):
    result = dg.materialize(
        [*freshness_checks, *LINEAGE],
        resources=local_resources({"CRYPTO_ASSETS_HOME": str(tmp_path)}),
        instance=instance,
        selection=dg.AssetSelection.checks(*freshness_checks),
        raise_on_error=False,
    )
    evaluations = result.get_asset_check_evaluations()
    assert [e.passed for e in evaluations] == [False]
    with WebhookReceiver() as receiver:
        alert_tick(instance, AlertNotifier(webhook_url=receiver.url))
    assert [(b["asset"], b["check"]) for b in receiver.bodies] == [
        ("snowflake_btcusdt", "freshness_check")
    ]
