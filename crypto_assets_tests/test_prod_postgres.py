"""The production instance, deploy/dagster.prod.yaml, on a real PostgreSQL.

A throwaway cluster from the machine's PostgreSQL is set up with the production guide's own
commands; the pipeline runs with local resources against the Binance stand-in. A day
materializes and its run, events and check executions are rows in Postgres; the run-history
prune deletes them there; and under the real daemon the run queue never runs two runs of one day
at once, while a run of another day goes alongside.
"""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import psycopg2
import pytest

# What `dagster job launch` uses to queue a run: one code server for several runs here, where
# three CLI processes would each start their own.
from dagster._cli.job import _create_run
from dagster._cli.workspace.cli_target import (
    get_code_location_from_workspace,
    get_remote_job_from_remote_repo,
    get_remote_repository_from_code_location,
    get_workspace_from_cli_opts,
)
from dagster_shared.cli import WorkspaceOpts

from crypto_assets.automation.housekeeping import prune_run_history
from crypto_assets.automation.jobs import kline_lineage_job
from crypto_assets.klines.freshness import freshness_checks
from crypto_assets.resources import local_resources
from crypto_assets.storage.run_history import LOGS_PRUNED_TAG
from crypto_assets_tests.binance_standin import BinanceStandIn
from crypto_assets_tests.conftest import synthetic_days
from crypto_assets_tests.lineage import CHECKS as CHECKS_DEFS
from crypto_assets_tests.lineage import LINEAGE
from crypto_assets_tests.postgres_cluster import PostgresCluster, guide_block, postgres_cluster
from crypto_assets_tests.processes import start_daemon

__all__ = ["postgres_cluster"]  # the session's cluster, for this module's fixtures

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
MODULE = "crypto_assets.definitions"
DAY, OTHER_DAY = "2024-01-01", "2024-01-02"
CHECKS = {
    "close_time_matches_interval",
    "complete_day",
    "high_at_or_above_open_and_close",
    "low_at_or_below_open_and_close",
    "open_time_unique_on_grid",
    "prices_positive",
    "taker_base_within_volume",
    "taker_quote_within_quote_volume",
    "volumes_non_negative",
    "warehouse_matches_clean_klines",
}


@pytest.fixture(scope="module")
def prod_home(
    postgres_cluster: PostgresCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, dict[str, str]]]:
    """The guide's two setup blocks: the database and its user, then the Dagster instance."""
    postgres_cluster.as_postgres(["bash", "-c", guide_block("# Postgres: the Dagster database")])
    home = tmp_path_factory.mktemp("prod_home")
    env = {**os.environ, **postgres_cluster.dagster_env(), "DAGSTER_HOME": str(home)}
    dagster_block = guide_block("# Dagster: the instance in Postgres")
    # This virtualenv already holds the prod extra (pyproject's dev extra includes it).
    commands = [
        line.replace(".venv/bin/", f"{BIN}/")
        for line in dagster_block.splitlines()
        if "pip install" not in line
    ]
    subprocess.run(["bash", "-ec", "\n".join(commands)], env=env, cwd=ROOT, check=True)
    with pytest.MonkeyPatch.context() as patch:
        for name, value in postgres_cluster.dagster_env().items():
            patch.setenv(name, value)
        patch.setenv("DAGSTER_HOME", str(home))
        yield home, env


def rows(cluster: PostgresCluster, sql: str, *args: object) -> list[tuple]:
    settings = cluster.dagster_env()
    with (
        psycopg2.connect(
            host=settings["DAGSTER_PG_HOST"],
            port=cluster.port,
            user=settings["DAGSTER_PG_USERNAME"],
            password=settings["DAGSTER_PG_PASSWORD"],
            dbname=settings["DAGSTER_PG_DB"],
        ) as connection,
        connection.cursor() as cursor,
    ):
        cursor.execute(sql, args)
        return cursor.fetchall()


def stored(cluster: PostgresCluster, run_id: str) -> dict[str, object]:
    """What Postgres holds of one run: its status, its event types and its check executions."""
    status = rows(cluster, "select status from runs where run_id = %s", run_id)
    events = rows(
        cluster,
        "select dagster_event_type, count(*) from event_logs where run_id = %s group by 1",
        run_id,
    )
    checks = rows(
        cluster,
        "select check_name, execution_status from asset_check_executions where run_id = %s",
        run_id,
    )
    return {
        "status": status[0][0] if status else None,
        "events": dict(events),
        "checks": dict(checks),
    }


def refresh(instance: dg.DagsterInstance, resources: dict, run_key: str) -> str:
    """A fresh-data refresh of DAY, tagged as the sensor tags it, run in-process."""
    definitions = dg.Definitions(
        assets=LINEAGE,
        asset_checks=[*CHECKS_DEFS, *freshness_checks],
        jobs=[kline_lineage_job],
        resources=resources,
    )
    job = definitions.resolve_job_def(kline_lineage_job.name)
    result = job.execute_in_process(
        instance=instance,
        partition_key=DAY,
        tags={"crypto_assets/trigger": "fresh_klines_sensor", "dagster/run_key": run_key},
    )
    assert result.success
    return result.run_id


def test_a_day_materializes_into_postgres_and_the_prune_deletes_it_there(
    prod_home: tuple[Path, dict[str, str]], postgres_cluster: PostgresCluster, tmp_path: Path
) -> None:
    home, _ = prod_home
    with (
        BinanceStandIn({("BTCUSDT", "1m"): synthetic_days(DAY, 1)}) as standin,
        dg.DagsterInstance.from_config(str(home)) as instance,
    ):
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        resources = local_resources(
            {
                "CRYPTO_ASSETS_HOME": str(tmp_path),
                "BINANCE_BASE_URL": standin.url,
                "BINANCE_ARCHIVE_URL": "",
            }
        )
        older = refresh(instance, resources, f"{DAY}@1704067200000")
        newer = refresh(instance, resources, f"{DAY}@1704067260000")

        held = stored(postgres_cluster, older)
        assert held["status"] == "SUCCESS"
        assert held["events"]["ASSET_MATERIALIZATION"] == 3
        assert held["events"]["ASSET_CHECK_EVALUATION"] == 10
        assert held["events"]["PIPELINE_SUCCESS"] == 1  # RUN_SUCCESS, by its stored name
        assert held["checks"] == dict.fromkeys(CHECKS, "SUCCEEDED")
        assert stored(postgres_cluster, newer) == held

        now = datetime.now(timezone.utc)
        # Inside the runs' window, past the logs': the superseded refresh loses its logs.
        hour = timedelta(hours=1)
        logs_pruned = prune_run_history(instance, now - hour, now + hour)
        assert logs_pruned.logs_pruned_run_ids == [older]
        assert stored(postgres_cluster, older) == {"status": "SUCCESS", "events": {}, "checks": {}}
        assert instance.get_run_by_id(older).tags[LOGS_PRUNED_TAG] == "pruned"

        # Past both windows: the superseded refresh goes, the newest one stays whole.
        deleted = prune_run_history(instance, now + hour, now + hour)
        assert deleted.deleted_run_ids == [older]
        assert stored(postgres_cluster, older) == {"status": None, "events": {}, "checks": {}}
        assert stored(postgres_cluster, newer) == held


def queue_runs(instance: dg.DagsterInstance, days: list[str]) -> list[str]:
    """What `dagster job launch -m crypto_assets.definitions -j kline_lineage --tags ...` does,
    for several runs through one code server: each run is queued for the daemon."""
    with get_workspace_from_cli_opts(
        instance, version=dg.__version__, workspace_opts=WorkspaceOpts(module_name=(MODULE,))
    ) as workspace:
        location = get_code_location_from_workspace(workspace, None)
        repository = get_remote_repository_from_code_location(location, None)
        remote_job = get_remote_job_from_remote_repo(repository, kline_lineage_job.name)
        run_ids = []
        for day in days:
            run = _create_run(
                instance=instance,
                code_location=location,
                remote_repo=repository,
                remote_job=remote_job,
                run_config={},
                tags={"dagster/partition": day},
                op_selection=None,
                run_id=None,
            )
            run_ids.append(instance.submit_run(run.run_id, workspace).run_id)
        return run_ids


def dequeued_at(instance: dg.DagsterInstance, run_id: str) -> float:
    """When the daemon's run queue took the run (its RUN_STARTING event)."""
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.RUN_STARTING).records
    return records[0].event_log_entry.timestamp


@pytest.mark.e2e
def test_the_run_queue_never_runs_two_runs_of_one_day_at_once(
    prod_home: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    home, env = prod_home
    log = tmp_path / "daemon.log"
    with BinanceStandIn({("BTCUSDT", "1m"): synthetic_days(DAY, 2)}) as standin:
        env = {
            **env,
            "CRYPTO_ASSETS_ENV": "local",
            "CRYPTO_ASSETS_HOME": str(tmp_path / "data"),
            "BINANCE_BASE_URL": standin.url,
            "BINANCE_ARCHIVE_URL": "",
        }
        env.pop("CRYPTO_ASSETS_ALERT_WEBHOOK_URL", None)
        with dg.DagsterInstance.from_config(str(home)) as instance:
            first, second, other = queue_runs(instance, [DAY, DAY, OTHER_DAY])
            # The first run the queue takes waits 6 s for its candles: the other day's run,
            # taken a few seconds later, comes while it still runs.
            standin.inject("slow", 1, delay=6)
            ids = [first, second, other]
            assert {record.dagster_run.status for record in records(instance, ids)} == {
                dg.DagsterRunStatus.QUEUED
            }
            daemon = start_daemon(env, log)
            try:
                deadline = time.monotonic() + 180
                while not all(record.dagster_run.is_finished for record in records(instance, ids)):
                    assert time.monotonic() < deadline, log.read_text()[-4000:]
                    time.sleep(0.5)
            finally:
                os.killpg(daemon.pid, signal.SIGTERM)
                daemon.wait(timeout=30)
            finished = {record.dagster_run.run_id: record for record in records(instance, ids)}
            taken = {run_id: dequeued_at(instance, run_id) for run_id in ids}
    assert {record.dagster_run.status for record in finished.values()} == {
        dg.DagsterRunStatus.SUCCESS
    }
    # The queue took the second run of the day only after the first had finished, and the other
    # day's run alongside the first: the limit is one run a day, not one run at a time.
    assert finished[first].end_time <= taken[second], "two runs of one day ran at once"
    assert finished[first].end_time <= finished[second].start_time
    assert taken[other] < finished[first].end_time, "the other day's run waited for the first"


def records(instance: dg.DagsterInstance, run_ids: list[str]) -> list[dg.RunRecord]:
    return list(instance.get_run_records(dg.RunsFilter(run_ids=run_ids)))
