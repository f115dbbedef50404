"""kill -9 of a 60-day range run half way, then the same range again: every stored file whole or
absent right after the kill, then every candle once, no temporary file left in either zone,
every Parquet object readable. And kill -9 of a reload inside its warehouse transaction: the
warehouse keeps the rows loaded before, every day whole and once."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pyarrow as pa
import pytest

from crypto_assets_tests.binance_standin import BinanceStandIn, synthetic_klines

pytestmark = pytest.mark.faults

JAN_1_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
MAR_1_MS = 1_709_251_200_000  # 2024-03-01T00:00:00Z: 60 days later
DAYS = 60
ROOT = Path(__file__).resolve().parents[1]
WRITE_PAUSE = Path(__file__).resolve().parent / "write_pause"


def range_run(
    home: Path,
    standin_url: str,
    partition_range: str = "2024-01-01...2024-02-29",
    extra_env: dict[str, str] | None = None,
) -> subprocess.Popen:
    """The README's backfill command, in its own session so the whole run can be killed."""
    return subprocess.Popen(
        [
            str(Path(sys.executable).parent / "dagster"),
            "asset",
            "materialize",
            "-m",
            "crypto_assets.definitions",
            "--select",
            "raw_klines,clean_klines,snowflake_btcusdt",
            "--partition-range",
            partition_range,
        ],
        env={
            **os.environ,
            "DAGSTER_HOME": str(home / "dagster_home"),
            "CRYPTO_ASSETS_HOME": str(home),
            "BINANCE_BASE_URL": standin_url,
            **(extra_env or {}),
        },
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def kill_when_paused(run: subprocess.Popen, marker: Path, never_paused: str) -> None:
    """SIGKILL the run's process group once its test-only pause point wrote ``marker``, and check
    that the paused process was the run's own."""
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert run.poll() is None, run.communicate()[1][-3000:]
        assert time.monotonic() < deadline, never_paused
        time.sleep(0.05)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait(timeout=30)
    assert run.returncode == -signal.SIGKILL
    assert marker.read_text() == str(run.pid)


def zone_files(home: Path, zone: str) -> list[Path]:
    folder = home / zone / "klines" / "symbol=BTCUSDT" / "interval=1m"
    return sorted(folder.iterdir()) if folder.exists() else []


def stored_rows(path: Path) -> int | str:
    """A stored file's row count, or why it does not read (so a failure names the file)."""
    try:
        return len(pd.read_parquet(path))
    except pa.ArrowInvalid as exc:
        return f"unreadable: {exc}"


def assert_whole_or_absent(home: Path) -> None:
    """What the kill left, read before anything rewrites it: every stored day's object parses
    to its 1,440 rows (a torn one would not), and the warehouse, if there, holds whole days."""
    for zone in ("raw", "transformed"):
        stored = [path for path in zone_files(home, zone) if not path.name.startswith(".")]
        assert [(path.name, stored_rows(path)) for path in stored] == [
            (path.name, 1440) for path in stored
        ]
    warehouse = home / "cryptodb.duckdb"
    if warehouse.exists():
        with duckdb.connect(str(warehouse), read_only=True) as connection:
            tables = connection.execute(
                "select count(*) from information_schema.tables where table_name = 'btcusdt'"
            ).fetchone()
            if tables == (1,):
                per_day = connection.execute(
                    "select count(*), count(distinct open_time) from cryptodb.cryptoschema.btcusdt"
                    " group by cast(open_time as date)"
                ).fetchall()
                assert set(per_day) <= {(1440, 1440)}


def test_a_range_run_killed_half_way_then_rerun_holds_every_candle_once(tmp_path):
    """Killed while the 31st day's raw file is half written (held there by a test-only
    ``sitecustomize``, so the kill lands mid-write every time, not by timing)."""
    (tmp_path / "dagster_home").mkdir()
    shutil.copy(ROOT / "deploy" / "dagster.local.yaml", tmp_path / "dagster_home" / "dagster.yaml")
    rows = synthetic_klines("1m", JAN_1_MS, MAR_1_MS)
    marker = tmp_path / "paused_inside_a_write"
    pause = {
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(WRITE_PAUSE), os.environ.get("PYTHONPATH")])
        ),
        "WRITE_PAUSE_FOLDER": str(tmp_path / "raw" / "klines" / "symbol=BTCUSDT" / "interval=1m"),
        "WRITE_PAUSE_AT": str(DAYS // 2 + 1),
        "WRITE_PAUSE_MARKER": str(marker),
    }
    with BinanceStandIn({("BTCUSDT", "1m"): rows}, clock_ms=lambda: MAR_1_MS + 30_000) as standin:
        killed = range_run(tmp_path, standin.url, extra_env=pause)
        kill_when_paused(killed, marker, "the range run never reached its 31st raw write")
        assert_whole_or_absent(tmp_path)
        raw = zone_files(tmp_path, "raw")
        assert [path.name for path in raw if not path.name.startswith(".")] == [
            f"date=2024-01-{day:02d}.parquet" for day in range(1, DAYS // 2 + 1)
        ]
        # The held write's temporary, half written, is left beside its target for the rerun.
        assert len([path for path in raw if path.name.startswith(".")]) == 1

        rerun = range_run(tmp_path, standin.url)
        _, stderr = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, stderr[-3000:]

    for zone in ("raw", "transformed"):
        files = zone_files(tmp_path, zone)
        assert [path.name for path in files if path.name.startswith(".")] == []
        assert len(files) == DAYS
        assert all(len(pd.read_parquet(path)) == 1440 for path in files)
    with duckdb.connect(str(tmp_path / "cryptodb.duckdb"), read_only=True) as connection:
        assert connection.execute(
            "select count(*), count(distinct open_time), min(open_time)::varchar,"
            " max(open_time)::varchar from cryptodb.cryptoschema.btcusdt"
        ).fetchone() == (86_400, 86_400, "2024-01-01 00:00:00", "2024-02-29 23:59:00")


JAN_30_MS = 1_706_572_800_000  # 2024-01-30T00:00:00Z
FEB_3_MS = 1_706_918_400_000  # 2024-02-03T00:00:00Z: 4 days later, across a month's end
RELOAD_RANGE = "2024-01-30...2024-02-02"
RELOAD_DAYS = ["2024-01-30", "2024-01-31", "2024-02-01", "2024-02-02"]
NEW_PRICE_FLOOR = 60_000  # the first load's closes are all below it, the second's all above
COMMIT_PAUSE = Path(__file__).resolve().parent / "commit_pause"


def warehouse_by_day(home: Path, loads: dict[str, list[list]]) -> dict[str, tuple]:
    """Each stored day's rows, distinct open times and which load its closes came from: the
    name of every load whose close the row carries for its open time ("neither" if none)."""
    closes = {name: {row[0]: float(row[4]) for row in rows} for name, rows in loads.items()}
    with duckdb.connect(str(home / "cryptodb.duckdb"), read_only=True) as connection:
        stored = connection.execute(
            "select epoch_ms(cast(open_time as timestamp)), close"
            " from cryptodb.cryptoschema.btcusdt"
        ).fetchall()
    days: dict[str, tuple[list[int], set[str]]] = {}
    for open_time, close in stored:
        day = pd.Timestamp(open_time, unit="ms").date().isoformat()
        open_times, names = days.setdefault(day, ([], set()))
        open_times.append(open_time)
        names.add(
            next(
                (name for name, by_time in closes.items() if by_time.get(open_time) == close),
                "neither",
            )
        )
    return {
        day: (len(open_times), len(set(open_times)), names)
        for day, (open_times, names) in sorted(days.items())
    }


def last_run_step_events(home: Path, step_key: str) -> tuple[str, list[str]]:
    """The last run's status and the events its step recorded (what was planned left out)."""
    with dg.DagsterInstance.from_config(str(home / "dagster_home")) as instance:
        (run,) = instance.get_runs(limit=1)
        return run.status.value, [
            entry.dagster_event.event_type_value
            for entry in instance.all_logs(run.run_id)
            if entry.dagster_event is not None
            and entry.dagster_event.step_key == step_key
            and not entry.dagster_event.event_type_value.endswith("_PLANNED")
        ]


def test_a_reload_killed_inside_its_warehouse_transaction_leaves_the_old_rows_whole(
    tmp_path, monkeypatch
):
    """A 4-day range loaded once, then loaded again from different candles and killed after the
    load's delete and insert, right before its commit: the warehouse holds the first load, every
    day whole and once; the rerun then holds the second load."""
    (tmp_path / "dagster_home").mkdir()
    shutil.copy(ROOT / "deploy" / "dagster.local.yaml", tmp_path / "dagster_home" / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))  # for the event log
    loads = {
        "old": synthetic_klines("1m", JAN_30_MS, FEB_3_MS, seed=7, start_price=30_000.0),
        "new": synthetic_klines("1m", JAN_30_MS, FEB_3_MS, seed=8, start_price=90_000.0),
    }
    assert max(float(row[4]) for row in loads["old"]) < NEW_PRICE_FLOOR
    assert min(float(row[4]) for row in loads["new"]) > NEW_PRICE_FLOOR
    rows = len(loads["new"])
    all_old = {day: (1440, 1440, {"old"}) for day in RELOAD_DAYS}
    all_new = {day: (1440, 1440, {"new"}) for day in RELOAD_DAYS}

    with BinanceStandIn({("BTCUSDT", "1m"): loads["old"]}, clock_ms=lambda: FEB_3_MS) as standin:
        first = range_run(tmp_path, standin.url, RELOAD_RANGE)
        _, stderr = first.communicate(timeout=120)
    assert first.returncode == 0, stderr[-3000:]
    assert warehouse_by_day(tmp_path, loads) == all_old

    marker = tmp_path / "paused_before_commit"
    pause = {
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(COMMIT_PAUSE), os.environ.get("PYTHONPATH")])
        ),
        # Inside the load's transaction: the whole range replaced by the second load's rows.
        "COMMIT_PAUSE_WHEN": f"select count(*) = {rows} and min(close) > {NEW_PRICE_FLOOR}"
        " from cryptodb.cryptoschema.btcusdt",
        "COMMIT_PAUSE_MARKER": str(marker),
    }
    with BinanceStandIn({("BTCUSDT", "1m"): loads["new"]}, clock_ms=lambda: FEB_3_MS) as standin:
        killed = range_run(tmp_path, standin.url, RELOAD_RANGE, pause)
        kill_when_paused(killed, marker, "the reload never reached its commit")
        # The warehouse step had handed over its output and was inside the IO manager's load.
        assert last_run_step_events(tmp_path, "snowflake_btcusdt") == (
            "STARTED",
            ["STEP_START", "LOADED_INPUT", "STEP_INPUT", "STEP_OUTPUT"],
        )
        assert_whole_or_absent(tmp_path)
        assert warehouse_by_day(tmp_path, loads) == all_old

        rerun = range_run(tmp_path, standin.url, RELOAD_RANGE)
        _, stderr = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, stderr[-3000:]
    assert warehouse_by_day(tmp_path, loads) == all_new
