"""kill -9 of a 60-day range run half way, then the same range again: every stored file whole or
absent right after the kill, then every candle once, no temporary file left in either zone,
every Parquet object readable."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from crypto_assets_tests.binance_standin import BinanceStandIn, synthetic_klines

pytestmark = pytest.mark.faults

JAN_1_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
MAR_1_MS = 1_709_251_200_000  # 2024-03-01T00:00:00Z: 60 days later
DAYS = 60
ROOT = Path(__file__).resolve().parents[1]


def range_run(home: Path, standin_url: str) -> subprocess.Popen:
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
            "2024-01-01...2024-02-29",
        ],
        env={
            **os.environ,
            "DAGSTER_HOME": str(home / "dagster_home"),
            "CRYPTO_ASSETS_HOME": str(home),
            "BINANCE_BASE_URL": standin_url,
        },
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def zone_files(home: Path, zone: str) -> list[Path]:
    folder = home / zone / "klines" / "symbol=BTCUSDT" / "interval=1m"
    return sorted(folder.iterdir()) if folder.exists() else []


def assert_whole_or_absent(home: Path) -> None:
    """What the kill left, read before anything rewrites it: every stored day's object parses
    to its 1,440 rows (a torn one would not), and the warehouse, if there, holds whole days."""
    for zone in ("raw", "transformed"):
        stored = [path for path in zone_files(home, zone) if not path.name.startswith(".")]
        assert [(path.name, len(pd.read_parquet(path))) for path in stored] == [
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
    (tmp_path / "dagster_home").mkdir()
    shutil.copy(ROOT / "deploy" / "dagster.local.yaml", tmp_path / "dagster_home" / "dagster.yaml")
    rows = synthetic_klines("1m", JAN_1_MS, MAR_1_MS)
    with BinanceStandIn({("BTCUSDT", "1m"): rows}, clock_ms=lambda: MAR_1_MS + 30_000) as standin:
        killed = range_run(tmp_path, standin.url)
        deadline = time.monotonic() + 120
        while len(zone_files(tmp_path, "raw")) < DAYS // 2 and killed.poll() is None:
            assert time.monotonic() < deadline, "the range run never reached half way"
            time.sleep(0.05)
        os.killpg(killed.pid, signal.SIGKILL)
        killed.wait(timeout=30)
        assert killed.returncode == -signal.SIGKILL
        written_before_kill = len(zone_files(tmp_path, "raw"))
        assert DAYS // 2 <= written_before_kill < DAYS
        assert_whole_or_absent(tmp_path)
        # A kill during a write leaves the writer's temporary beside its target; leave one as
        # it would, so the rerun is shown to clear it whatever instant the kill landed on.
        raw_folder = zone_files(tmp_path, "raw")[0].parent
        (raw_folder / f".date=2024-02-20.parquet.{killed.pid}.x1y2z3").write_bytes(b"PAR1")

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
