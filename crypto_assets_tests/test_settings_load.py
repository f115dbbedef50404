"""The code location refuses to load with a bad setting, naming the variable; a good one is used.

Each case imports crypto_assets.definitions in its own interpreter, as `dagster dev` does; the
interpreters run side by side to keep the test short."""

import os
import subprocess
import sys

import pytest

PROBE = """
import dagster as dg
from crypto_assets.definitions import defs
check = defs.get_asset_checks_def(
    dg.AssetCheckKey(dg.AssetKey("snowflake_btcusdt"), "freshness_check")
)
spec = next(iter(check.check_specs))
print(spec.metadata["dagster/freshness_params"].value["lower_bound_delta_seconds"])
"""

REFUSED = {
    "CRYPTO_ASSETS_SYMBOL": ("btc-usdt", "Invalid symbol 'btc-usdt'"),
    "CRYPTO_ASSETS_INTERVAL": ("7m", "Invalid interval '7m'"),
    "CRYPTO_ASSETS_START_DATE": ("2017-13-45", "CRYPTO_ASSETS_START_DATE='2017-13-45'"),
    "CRYPTO_ASSETS_ENV": ("staging", "CRYPTO_ASSETS_ENV='staging'"),
    "CRYPTO_ASSETS_MAX_STALENESS_MINUTES": ("a day", "CRYPTO_ASSETS_MAX_STALENESS_MINUTES='a day'"),
    "BINANCE_BASE_URL": (
        "http://mirror.example.com",
        "BINANCE_BASE_URL='http://mirror.example.com': plain http is allowed only to this machine",
    ),
    "CRYPTO_ASSETS_SENSOR_INTERVAL_SECONDS": (
        "abc",
        "CRYPTO_ASSETS_SENSOR_INTERVAL_SECONDS='abc': expected a whole number from 1 to 86400.",
    ),
}


@pytest.fixture(scope="module")
def loads() -> dict[str, subprocess.CompletedProcess]:
    """Every case's import, started together: {variable: finished process}."""
    cases = {name: {name: value} for name, (value, _) in REFUSED.items()}
    cases["good"] = {"CRYPTO_ASSETS_MAX_STALENESS_MINUTES": "90"}
    started = {
        name: subprocess.Popen(
            [sys.executable, "-c", PROBE],
            env={**os.environ, **overrides},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, overrides in cases.items()
    }
    finished = {}
    for name, process in started.items():
        stdout, stderr = process.communicate(timeout=180)
        finished[name] = subprocess.CompletedProcess(
            process.args, process.returncode, stdout, stderr
        )
    return finished


@pytest.mark.parametrize("variable", list(REFUSED))
def test_a_bad_value_stops_the_load_naming_the_variable(loads, variable):
    completed = loads[variable]
    assert completed.returncode != 0
    last_line = completed.stderr.strip().splitlines()[-1]
    assert "SettingsError" in last_line
    assert variable in last_line
    assert REFUSED[variable][1] in last_line


def test_max_staleness_minutes_sets_the_freshness_window(loads):
    completed = loads["good"]
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.strip() == "5400.0"  # 90 minutes


def test_the_loaded_code_location_is_out_of_the_garbage_collectors_sight():
    """A run's full collections skip what loading the definitions created (see definitions.py)."""
    frozen = subprocess.run(
        [
            sys.executable,
            "-c",
            "import gc, crypto_assets.definitions; print(gc.get_freeze_count(), gc.isenabled())",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert int(frozen[0]) > 100_000
    assert frozen[1] == "True"
