"""Serve klines in the foreground for manual runs and demos.

``python -m crypto_assets_tests.binance_standin --port 8765 --csv FILE [--synthetic-days N]``
prints its URL on stdout and serves until interrupted. The same URL serves Binance's archive
layout (``/data/spot/daily/klines/...zip`` and ``.CHECKSUM``) for every day before yesterday,
so both ``BINANCE_BASE_URL`` and ``BINANCE_ARCHIVE_URL`` can point at it. The kline websocket
streams are on a second port, whose URL (for ``BINANCE_STREAM_URL``) is the second line printed;
``--live`` extends the synthetic candles through tomorrow, so today has candles and the stream a
forming one (REST shows only what has opened by the real clock).
"""

from __future__ import annotations

import argparse
import pathlib
import signal
import sys
import threading
import time
from collections.abc import Sequence
from datetime import datetime, timezone

from crypto_assets_tests.binance_standin.archive import ARCHIVE_VARIANTS
from crypto_assets_tests.binance_standin.data import (
    DAY_MS,
    INTERVAL_MS,
    Row,
    load_klines_csv,
    synthetic_klines,
)
from crypto_assets_tests.binance_standin.market import SYMBOL_RE
from crypto_assets_tests.binance_standin.server import BinanceStandIn


def _series_from_file_name(path: str) -> tuple[str, str]:
    parts = pathlib.Path(path).stem.split("-")
    if len(parts) < 2 or not SYMBOL_RE.match(parts[0]) or parts[1] not in INTERVAL_MS:
        raise ValueError(f"{path}: expected a name like BTCUSDT-1m-2025-08-01_2025-08-10.csv")
    return parts[0], parts[1]


def main(argv: Sequence[str] | None = None) -> int:
    """Serve klines in the foreground for manual runs and demos."""
    parser = argparse.ArgumentParser(description="Binance REST API stand-in on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--csv", action="extend", nargs="+", default=[], metavar="FILE")
    parser.add_argument(
        "--synthetic-days",
        type=int,
        default=None,
        metavar="N",
        help="serve N days of synthetic BTCUSDT 1m klines ending yesterday (UTC)",
    )
    parser.add_argument(
        "--synthetic-from",
        default=None,
        metavar="YYYY-MM-DD",
        help="serve synthetic BTCUSDT 1m klines from this UTC day through yesterday",
    )
    parser.add_argument(
        "--archive-variant",
        action="append",
        default=[],
        metavar="DAY=VARIANT",
        help=f"serve a day's archive file as one of {', '.join(sorted(ARCHIVE_VARIANTS))}",
    )
    parser.add_argument(
        "--live",
        action="store_true",
        help="extend the synthetic candles through tomorrow (UTC): today's and the stream's",
    )
    parser.add_argument("--stream-port", type=int, default=0, help="default: a free port")
    parser.add_argument(
        "--stream-tick",
        type=float,
        default=0.25,
        metavar="SECONDS",
        help="how often the stream pushes the forming candle",
    )
    parser.add_argument("--weight-limit", type=int, default=6000)
    args = parser.parse_args(argv)

    klines: dict[tuple[str, str], list[Row]] = {}
    today = int(time.time() * 1000) // DAY_MS * DAY_MS
    end = today + (2 * DAY_MS if args.live else 0)
    if args.synthetic_from:
        start = int(
            datetime.fromisoformat(args.synthetic_from).replace(tzinfo=timezone.utc).timestamp()
            * 1000
        )
        klines[("BTCUSDT", "1m")] = synthetic_klines("1m", start, end)
    elif args.synthetic_days:
        klines[("BTCUSDT", "1m")] = synthetic_klines(
            "1m", today - args.synthetic_days * DAY_MS, end
        )
    for path in args.csv:
        try:
            key = _series_from_file_name(path)
        except ValueError as exc:
            parser.error(str(exc))
        merged = {row[0]: row for row in klines.get(key, [])}
        merged.update((row[0], row) for row in load_klines_csv(path))
        klines[key] = [merged[t] for t in sorted(merged)]
    if not klines:
        parser.error("nothing to serve: give --csv FILE and/or --synthetic-days N")

    standin = BinanceStandIn(
        klines,
        weight_limit=args.weight_limit,
        port=args.port,
        stream_port=args.stream_port,
        stream_tick_seconds=args.stream_tick,
    )
    for setting in args.archive_variant:
        day, _, variant = setting.partition("=")
        try:
            standin.set_archive_variant(day, variant)
        except ValueError as exc:
            parser.error(str(exc))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    standin.start()
    print(standin.url, flush=True)
    print(standin.stream_url, flush=True)
    for (symbol, interval), rows in sorted(klines.items()):
        print(f"  {symbol} {interval}: {len(rows)} candles", file=sys.stderr, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        standin.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
