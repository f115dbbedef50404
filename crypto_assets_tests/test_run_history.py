"""The run history stays bounded: superseded refresh runs are pruned, files included."""

import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import pytest

# dagster_instance_config validates a dagster.yaml the way `dagster` itself loads it.
from dagster._core.instance.config import dagster_instance_config

from crypto_assets.automation.housekeeping import prune_run_history, prune_run_history_schedule
from crypto_assets.definitions import defs
from crypto_assets.storage.run_history import (
    LOGS_PRUNED_TAG,
    delete_run_everywhere,
    delete_run_logs,
)
from crypto_assets_tests.binance_standin import BinanceStandIn
from crypto_assets_tests.conftest import synthetic_days
from crypto_assets_tests.lineage import materialize_days
from crypto_assets_tests.test_archive_lineage import DAYS, resources
from crypto_assets_tests.test_event_log_concurrency import ASSET, materialization

SUCCESS, FAILURE = dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE
DEPLOY_DIR = Path(__file__).resolve().parents[1] / "deploy"


def add_run(
    instance: dg.DagsterInstance,
    day: str,
    run_key: str,
    status: dg.DagsterRunStatus = SUCCESS,
    trigger: str = "fresh_klines_sensor",
) -> str:
    run_id = str(uuid.uuid4())
    run = dg.DagsterRun(
        job_name="kline_lineage",
        run_id=run_id,
        status=status,
        tags={
            "dagster/partition": day,
            "dagster/run_key": run_key,
            "crypto_assets/trigger": trigger,
        },
    )
    instance.add_run(run)
    instance.report_engine_event("a run's event, so it has an event file", run)
    return run_id


def test_prune_deletes_only_superseded_refreshes_older_than_the_window(instance):
    refreshed_1 = add_run(instance, "2024-01-02", "2024-01-02@1704153600000")
    refreshed_2 = add_run(instance, "2024-01-02", "2024-01-02@1704153660000")
    failed = add_run(instance, "2024-01-02", "2024-01-02@1704153720000", status=FAILURE)
    final = add_run(instance, "2024-01-02", "2024-01-02@final")
    scheduled = add_run(instance, "2024-01-02", "daily-2024-01-02", trigger="schedule")
    # 2024-01-03 never got its final run: its newest successful refresh describes the day
    older_of_3rd = add_run(instance, "2024-01-03", "2024-01-03@1704240000000")
    newest_of_3rd = add_run(instance, "2024-01-03", "2024-01-03@1704240060000")
    shard = Path(instance.event_log_storage.path_for_shard(refreshed_1))
    assert shard.exists()

    before_them = datetime.now(timezone.utc) - timedelta(hours=1)
    assert prune_run_history(instance, before_them, before_them).deleted_run_ids == []

    after_them = datetime.now(timezone.utc) + timedelta(seconds=1)
    result = prune_run_history(instance, runs_before=after_them, logs_before=after_them)

    assert sorted(result.deleted_run_ids) == sorted([refreshed_1, refreshed_2, older_of_3rd])
    remaining = {run.run_id for run in instance.get_runs()}
    assert remaining == {failed, final, scheduled, newest_of_3rd}
    assert not shard.exists()
    assert len(list(instance.all_logs(final))) == 1


def test_superseded_refreshes_lose_their_logs_first_and_stay_listed(local_instance):
    instance = local_instance
    old = add_run(instance, "2024-01-02", "2024-01-02@1704153600000")
    recent = add_run(instance, "2024-01-02", "2024-01-02@1704153660000")
    logs_window_starts = datetime.now(timezone.utc) + timedelta(seconds=1)
    newest = add_run(instance, "2024-01-02", "2024-01-02@1704153720000")
    failed = add_run(instance, "2024-01-02", "2024-01-02@1704153780000", status=FAILURE)
    long_ago = logs_window_starts - timedelta(hours=48)

    result = prune_run_history(instance, runs_before=long_ago, logs_before=logs_window_starts)

    assert result.deleted_run_ids == []
    assert sorted(result.logs_pruned_run_ids) == sorted([old, recent])
    assert {run.run_id for run in instance.get_runs()} == {old, recent, newest, failed}
    for pruned in (old, recent):
        assert list(instance.all_logs(pruned)) == []
        assert instance.get_run_by_id(pruned).tags["crypto_assets/logs"] == "pruned"
        assert instance.get_run_by_id(pruned).status == SUCCESS
    for kept in (newest, failed):
        assert [entry.message for entry in instance.all_logs(kept)] == [
            "a run's event, so it has an event file"
        ]
        assert "crypto_assets/logs" not in instance.get_run_by_id(kept).tags
    again = prune_run_history(instance, runs_before=long_ago, logs_before=logs_window_starts)
    assert again.logs_pruned_run_ids == []


def test_the_prune_job_runs_hourly_is_on_by_default_and_prunes_its_own_runs(instance):
    assert prune_run_history_schedule.cron_schedule == "30 * * * *"
    assert prune_run_history_schedule.execution_timezone == "UTC"
    assert prune_run_history_schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    old = add_run(instance, "2024-01-02", "2024-01-02@1704153600000")
    add_run(instance, "2024-01-02", "2024-01-02@final")
    job = defs.resolve_job_def("prune_run_history")
    result = job.execute_in_process(
        instance=instance,
        run_config={
            "ops": {"prune_superseded_refresh_runs": {"config": {"keep_refresh_hours": 0}}}
        },
    )
    assert result.success
    assert instance.get_run_by_id(old) is None
    again = job.execute_in_process(
        instance=instance,
        run_config={
            "ops": {"prune_superseded_refresh_runs": {"config": {"keep_refresh_hours": 0}}}
        },
    )
    assert instance.get_run_by_id(result.run_id) is None
    assert instance.get_run_by_id(again.run_id) is not None


@pytest.mark.parametrize("config_file", ["dagster.local.yaml", "dagster.prod.yaml"])
def test_both_instance_configs_purge_sensor_and_schedule_ticks(config_file):
    config, _ = dagster_instance_config(str(DEPLOY_DIR), config_filename=config_file)
    assert config["retention"] == {
        "schedule": {"purge_after_days": 90},
        "sensor": {"purge_after_days": {"skipped": 1, "failure": 30, "success": 7}},
    }


def add_analytics_run(
    instance: dg.DagsterInstance, assets: list[str], day: str | None, status=SUCCESS
) -> str:
    run_id = str(uuid.uuid4())
    tags = {"dagster/sensor_name": "analytics_automation_sensor"}
    if day:
        tags["dagster/partition"] = day
    instance.add_run(
        dg.DagsterRun(
            job_name="__ASSET_JOB",
            run_id=run_id,
            status=status,
            tags=tags,
            asset_selection=frozenset(dg.AssetKey(name) for name in assets),
        )
    )
    instance.report_engine_event(
        "a run's event, so it has an event file", instance.get_run_by_id(run_id)
    )
    return run_id


def test_prune_deletes_analytics_runs_a_newer_run_of_the_same_assets_replaced(instance):
    bars_old = add_analytics_run(instance, ["btcusdt_bars"], "2024-01-02")
    bars_other_day = add_analytics_run(instance, ["btcusdt_bars"], "2024-01-03")
    rebuild_old = add_analytics_run(instance, ["btcusdt_backtests", "btcusdt_levels"], None)
    rebuild_failed = add_analytics_run(
        instance, ["btcusdt_backtests", "btcusdt_levels"], None, status=FAILURE
    )
    bars_new = add_analytics_run(instance, ["btcusdt_bars"], "2024-01-02")
    rebuild_new = add_analytics_run(instance, ["btcusdt_backtests", "btcusdt_levels"], None)

    before_them = datetime.now(timezone.utc) - timedelta(hours=1)
    assert prune_run_history(instance, before_them, before_them).deleted_run_ids == []
    after_them = datetime.now(timezone.utc) + timedelta(seconds=1)
    result = prune_run_history(instance, runs_before=after_them, logs_before=after_them)

    assert sorted(result.deleted_run_ids) == sorted([bars_old, rebuild_old])
    remaining = {run.run_id for run in instance.get_runs()}
    assert remaining == {bars_other_day, rebuild_failed, bars_new, rebuild_new}


CHECKS_LOOKED_AT = [
    dg.AssetCheckKey(dg.AssetKey("clean_klines"), "prices_positive"),
    dg.AssetCheckKey(dg.AssetKey("snowflake_btcusdt"), "warehouse_matches_clean_klines"),
]


def check_executions(instance: dg.DagsterInstance, run_id: str) -> set[str]:
    return {
        record.key.name
        for check in CHECKS_LOOKED_AT
        for record in instance.event_log_storage.get_asset_check_execution_history(check, limit=10)
        if record.run_id == run_id
    }


@pytest.mark.parametrize("storage", ["local", "dagster_default"])
@pytest.mark.parametrize("delete", [delete_run_everywhere, delete_run_logs])
def test_deleting_a_run_or_its_logs_leaves_none_of_its_check_executions(
    tmp_path, storage, delete, request
):
    instance = request.getfixturevalue("local_instance" if storage == "local" else "instance")
    with BinanceStandIn({("BTCUSDT", "1m"): synthetic_days(DAYS[0], 1, seed=5)}) as standin:
        result = materialize_days(
            resources(tmp_path / "home", standin, archive=False), DAYS[0], instance=instance
        )
    assert result.success
    assert check_executions(instance, result.run_id) == {
        "prices_positive",
        "warehouse_matches_clean_klines",
    }

    delete(instance, result.run_id)

    assert check_executions(instance, result.run_id) == set()
    if delete is delete_run_logs:
        assert list(instance.all_logs(result.run_id)) == []
        assert instance.get_run_by_id(result.run_id).status == SUCCESS
    else:
        assert instance.get_run_by_id(result.run_id) is None


def test_a_day_of_failures_keeps_its_first_and_newest_23_failed_runs(local_instance):
    instance = local_instance
    failed = [
        add_run(instance, "2024-01-02", f"2024-01-02@{minute}", status=FAILURE)
        for minute in range(30)
    ]
    other_day = [
        add_run(instance, "2024-01-03", f"2024-01-03@{minute}", status=FAILURE)
        for minute in range(3)
    ]
    succeeded = add_run(instance, "2024-01-02", "2024-01-02@30")
    long_ago = datetime.now(timezone.utc) - timedelta(days=1)

    result = prune_run_history(instance, long_ago, long_ago, long_ago, long_ago, long_ago)

    assert sorted(result.deleted_failed_run_ids) == sorted(failed[1:7])
    remaining = {run.run_id for run in instance.get_runs()}
    assert remaining == {failed[0], *failed[7:], *other_day, succeeded}
    assert len(remaining) == 24 + 3 + 1
    assert result.lineage_only_run_ids == []
    assert all(len(list(instance.all_logs(run_id))) == 1 for run_id in remaining)


def materialize_in(instance: dg.DagsterInstance, run_id: str, day: str) -> None:
    instance.store_event(materialization(run_id, day))


def test_failed_runs_lose_logs_then_go_and_kept_runs_lose_logs_but_not_what_they_wrote(instance):
    failed = add_run(instance, "2024-01-02", "2024-01-02@1704153600000", status=FAILURE)
    final = add_run(instance, "2024-01-02", "2024-01-02@final")
    materialize_in(instance, failed, "2024-01-02")
    materialize_in(instance, final, "2024-01-02")
    before_them = datetime.now(timezone.utc) - timedelta(hours=1)
    after_them = datetime.now(timezone.utc) + timedelta(seconds=1)

    logs_only = prune_run_history(
        instance,
        runs_before=before_them,
        logs_before=before_them,
        failed_runs_before=before_them,
        failed_logs_before=after_them,
        run_logs_before=after_them,
    )
    assert logs_only.deleted_failed_run_ids == []
    assert sorted(logs_only.lineage_only_run_ids) == sorted([failed, final])
    for run_id in (failed, final):
        assert [entry.dagster_event_type for entry in instance.all_logs(run_id)] == [
            dg.DagsterEventType.ASSET_MATERIALIZATION
        ]
        assert instance.get_run_by_id(run_id).tags[LOGS_PRUNED_TAG] == "pruned"
    assert instance.get_materialized_partitions(ASSET) == {"2024-01-02"}
    last = instance.get_asset_records([ASSET])[0].asset_entry.last_materialization
    assert last.run_id == final

    again = prune_run_history(
        instance, before_them, before_them, before_them, after_them, after_them
    )
    assert again.lineage_only_run_ids == []  # once pruned, not again

    gone = prune_run_history(instance, before_them, before_them, after_them, after_them, after_them)
    assert gone.deleted_failed_run_ids == [failed]
    assert [run.run_id for run in instance.get_runs()] == [final]
