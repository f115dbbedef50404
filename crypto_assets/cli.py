"""The ``crypto-assets`` console command: klines to CSV from the terminal, with progress,
the analytics over what the warehouse holds, and the market dashboard."""

import argparse
import os
import sys
from collections.abc import Sequence

from crypto_assets.settings import SettingsError, env_int
from crypto_assets.sources.binance_rest import (
    INTERVAL_MS,
    BinanceError,
    BinanceKlinesClient,
    time_range_ms,
)
from crypto_assets.sources.klines_csv import save_klines_to_csv


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crypto-assets", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    klines = commands.add_parser(
        "klines", help="Download closed klines to a CSV file (default SYMBOL_INTERVAL.csv)."
    )
    klines.add_argument("symbol", help="Binance spot symbol, e.g. BTCUSDT")
    klines.add_argument("interval", help="Kline interval, e.g. 1m or 1h")
    klines.add_argument(
        "--start", help="First day or time, UTC (e.g. 2024-01-01); default: the beginning"
    )
    klines.add_argument("--end", help="End, exclusive, UTC (e.g. 2024-02-01); default: now")
    klines.add_argument("--out", help="CSV path; default SYMBOL_INTERVAL.csv in the current folder")
    klines.add_argument(
        "--base-url", help="Binance base URL; default $BINANCE_BASE_URL or api.binance.com"
    )
    analytics = commands.add_parser(
        "analytics",
        help="Materialize every analytics asset (group analytics) over the days the warehouse"
        " holds, as one Dagster run recorded in $DAGSTER_HOME.",
    )
    analytics.add_argument("--first-day", help="First day of the bars to rebuild (YYYY-MM-DD)")
    analytics.add_argument("--last-day", help="Last day of the bars to rebuild (YYYY-MM-DD)")
    dashboard = commands.add_parser(
        "dashboard", help="Serve the market dashboard (Streamlit) over the warehouse."
    )
    dashboard.add_argument("--host", default="127.0.0.1", help="address; default 127.0.0.1")
    dashboard.add_argument("--port", type=int, default=8501, help="port; default 8501")
    commands.add_parser(
        "live",
        help="Follow Binance's kline stream and load each closed candle's day into the"
        " warehouse seconds after its close (one in-process Dagster run at a time, recorded in"
        " $DAGSTER_HOME); `platform` runs it.",
    )
    platform = commands.add_parser(
        "platform",
        help="The whole local platform in one process: the Dagster webserver and daemon and the"
        " market dashboard; on a fresh home it loads recent history and the live loop by itself."
        " Ctrl-C or SIGTERM stops all of it.",
    )
    platform.add_argument("--host", default="127.0.0.1", help="address; default 127.0.0.1")
    platform.add_argument(
        "--ui-port", type=int, default=3000, help="the Dagster UI's port; default 3000"
    )
    platform.add_argument(
        "--dashboard-port",
        type=int,
        default=env_int("DASHBOARD_PORT", 8501, minimum=1, maximum=65_535),
        help="the dashboard's port; default $DASHBOARD_PORT or 8501",
    )
    return parser


def analytics(first_day: str | None = None, last_day: str | None = None) -> int:
    """One in-process run of the analytics group; partitioned bars over the days loaded."""
    from crypto_assets.settings import environment_name, local_home

    if environment_name() == "local":
        database = local_home() / "cryptodb.duckdb"
        if not database.is_file():
            print(
                f"crypto-assets: no warehouse at {database}: load some days first"
                " (make materialize DATE=YYYY-MM-DD).",
                file=sys.stderr,
            )
            return 2

    import dagster as dg

    from crypto_assets.analytics.definitions import ANALYTICS_ASSETS
    from crypto_assets.definitions import defs
    from crypto_assets.settings import KLINES

    warehouse = defs.resources["warehouse"]
    table = warehouse.qualified_table(KLINES.table)
    try:
        first, last = warehouse.query(
            f"select cast(min(open_time) as date), cast(max(open_time) as date) from {table}"
        )[0]
    except Exception as exc:  # the CLI's edge: one line, whatever the warehouse's driver raised
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"crypto-assets: cannot read {table}: {reason}", file=sys.stderr)
        return 2
    if first is None:
        print(f"crypto-assets: {table} holds no candles; load some days first.", file=sys.stderr)
        return 2
    first_day, last_day = first_day or str(first), last_day or str(last)
    job = defs.resolve_implicit_global_asset_job_def()
    instance = dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else None
    if instance is None:
        print("DAGSTER_HOME is not set: the run is not recorded for the UI.", file=sys.stderr)
    result = job.execute_in_process(
        instance=instance,
        asset_selection=[key for asset in ANALYTICS_ASSETS for key in asset.keys],
        tags={
            "dagster/asset_partition_range_start": first_day,
            "dagster/asset_partition_range_end": last_day,
            "crypto_assets/trigger": "cli",
        },
        raise_on_error=False,
    )
    outcome = "succeeded" if result.success else "failed"
    print(f"Analytics over {first_day}..{last_day}: run {result.run_id} {outcome}")
    return 0 if result.success else 1


def dashboard_command(host: str, port: int) -> list[str]:
    """``streamlit run`` on the dashboard page, headless, bound to host:port."""
    from crypto_assets.dashboard import app_path

    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app_path()),
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--server.fileWatcherType",
        "none",
        "--browser.gatherUsageStats",
        "false",
        "--client.showErrorDetails",
        "none",
        "--client.toolbarMode",
        "viewer",
    ]


def dashboard_preflight() -> str | None:
    """Why the dashboard cannot start in this environment, or None. Checked before Streamlit
    starts, so a bad setting is one line in the terminal rather than a page that keeps failing."""
    try:
        from crypto_assets.dashboard.connection import warehouse_from_env
        from crypto_assets.dashboard.queries import base_minutes
        from crypto_assets.settings import KLINES

        base_minutes(KLINES.interval)
        warehouse_from_env()
    except ValueError as exc:
        return str(exc)
    return None


def main(argv: Sequence[str] | None = None) -> int:
    from tqdm import tqdm

    try:
        args = _parser().parse_args(argv)
    except SettingsError as exc:
        print(f"crypto-assets: {exc}", file=sys.stderr)
        return 2
    if args.command == "analytics":
        return analytics(args.first_day, args.last_day)
    if args.command == "live":
        from crypto_assets.automation.live_loader import run_live_loader

        return run_live_loader()
    if args.command == "platform":
        from crypto_assets.platform import run_platform

        return run_platform(args.host, args.ui_port, args.dashboard_port)
    if args.command == "dashboard":
        problem = dashboard_preflight()
        if problem:
            print(f"crypto-assets: {problem}", file=sys.stderr)
            return 2
        command = dashboard_command(args.host, args.port)
        os.execv(command[0], command)
    try:
        start_ms, end_ms = time_range_ms(args.start, args.end)
        step = INTERVAL_MS.get(args.interval, 30 * 86_400_000)
        with tqdm(total=max((end_ms - start_ms) // step, 1), unit="candle", file=sys.stderr) as bar:
            path = save_klines_to_csv(
                args.symbol,
                args.interval,
                start=start_ms,
                end=end_ms,
                path=args.out,
                client=BinanceKlinesClient(base_url=args.base_url),
                on_page=lambda page: bar.update(len(page)),
            )
            rows = bar.n
    except (ValueError, BinanceError) as exc:
        print(f"crypto-assets: {exc}", file=sys.stderr)
        return 2
    print(f"Wrote {rows} klines to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
