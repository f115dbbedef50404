#!/usr/bin/env bash
# The local Dagster stack, run the way a user runs it: the webserver (UI and GraphQL API) and the
# daemon (schedules, sensors, backfills, the run queue), both on 127.0.0.1, sharing one
# persistent instance in DAGSTER_HOME. Ctrl-C (or SIGTERM) stops both.
#
# Usage, from any folder (it uses the project's .venv; create it first with `make setup`):
#
#   scripts/local_stack.sh                         # UI on http://127.0.0.1:3000
#   PORT=3001 scripts/local_stack.sh               # another port
#   CRYPTO_ASSETS_HOME=/srv/klines scripts/local_stack.sh
#
# CRYPTO_ASSETS_HOME (default ./data) holds the Parquet zones and the DuckDB warehouse;
# DAGSTER_HOME (default $CRYPTO_ASSETS_HOME/dagster_home) holds runs, event logs, schedule and
# sensor state, and gets deploy/dagster.local.yaml as its dagster.yaml when it has none.
# Every other variable (BINANCE_BASE_URL, CRYPTO_ASSETS_ALERT_WEBHOOK_URL, ...) is passed on.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${DAGSTER_BIN:-$ROOT/.venv/bin}
PORT=${PORT:-3000}
STOP_TIMEOUT=${STOP_TIMEOUT:-10}  # a service manager allows 15 s or so before it kills

for tool in dagster-webserver dagster-daemon; do
    [ -x "$BIN/$tool" ] || { echo "$BIN/$tool not found: run 'make setup' first" >&2; exit 1; }
done

# Dagster wants an absolute DAGSTER_HOME; resolve both folders before leaving the caller's cwd.
mkdir -p "${CRYPTO_ASSETS_HOME:-$ROOT/data}"
CRYPTO_ASSETS_HOME=$(cd "${CRYPTO_ASSETS_HOME:-$ROOT/data}" && pwd)
mkdir -p "${DAGSTER_HOME:-$CRYPTO_ASSETS_HOME/dagster_home}"
DAGSTER_HOME=$(cd "${DAGSTER_HOME:-$CRYPTO_ASSETS_HOME/dagster_home}" && pwd)
export CRYPTO_ASSETS_HOME DAGSTER_HOME
if [ ! -f "$DAGSTER_HOME/dagster.yaml" ]; then
    cp "$ROOT/deploy/dagster.local.yaml" "$DAGSTER_HOME/dagster.yaml"
fi
cd "$ROOT"

# A fresh DAGSTER_HOME gets its SQLite databases created here, once: the webserver and the daemon
# starting together would both create them, and two processes stamping one database's schema
# version leave it unreadable ("alembic_version has more than one head").
if [ ! -f "$DAGSTER_HOME/schedules/schedules.db" ]; then
    "$BIN/python" - <<'PYTHON'
import dagster as dg

with dg.DagsterInstance.get() as instance:
    instance.get_runs(limit=1)
    instance.all_instigator_state()
    instance.fetch_materializations(dg.AssetKey("snowflake_btcusdt"), limit=1)
PYTHON
fi

# Job control gives each process its own process group (their code servers and runs join it),
# and keeps SIGINT/SIGTERM working in them: without it, bash starts background processes with
# SIGINT ignored, and Dagster maps SIGTERM onto the SIGINT handler, so they could not be stopped.
set -m
"$BIN/dagster-webserver" -h 127.0.0.1 -p "$PORT" -m crypto_assets.definitions &
webserver=$!
"$BIN/dagster-daemon" run -m crypto_assets.definitions &
daemon=$!
echo "local_stack: webserver pid $webserver, daemon pid $daemon," \
    "UI http://127.0.0.1:$PORT, DAGSTER_HOME=$DAGSTER_HOME" >&2

stopping=
stop() {
    [ -n "$stopping" ] && return
    stopping=1
    echo "local_stack: stopping webserver and daemon" >&2
    kill -TERM -- "-$webserver" "-$daemon" 2>/dev/null || true
    for _ in $(seq "$STOP_TIMEOUT"); do
        kill -0 -- "-$webserver" 2>/dev/null || kill -0 -- "-$daemon" 2>/dev/null || break
        sleep 1
    done
    # Whatever is still there after STOP_TIMEOUT seconds (a hung code server, a run) is killed.
    kill -KILL -- "-$webserver" "-$daemon" 2>/dev/null || true
    wait "$webserver" "$daemon" 2>/dev/null || true
}
trap 'stop; exit 130' INT
trap 'stop; exit 143' TERM
trap 'stop; exit 129' HUP  # the terminal went away
trap stop EXIT

# Returns when either process ends (or a signal arrives); the EXIT trap then stops the other.
status=0
wait -n "$webserver" "$daemon" || status=$?
echo "local_stack: a process exited with status $status" >&2
exit "$status"
