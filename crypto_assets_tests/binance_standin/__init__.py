"""A local stand-in for the Binance spot REST API, used by tests instead of the real exchange.

Why: there is no internet here, and mocking `requests` would never show how our client copes with
what Binance really does on the wire: paging with ``limit``/``startTime``/``endTime``, the unclosed
last candle, request-weight headers, 429 then 418 bans, 5xx pages, truncated or malformed bodies and
dropped connections. This package serves that behaviour over real HTTP on 127.0.0.1 so the
python-binance based client can be pointed at it by base URL. It never imports ``crypto_assets``:
it is an independent fake of the exchange, not a mirror of our client.

Modules: ``data`` (kline rows: CSV, synthetic, the unclosed candle), ``market`` (the endpoints),
``limits`` (weight, bans, injected faults), ``wire`` (bodies and the route type), ``stream`` (the
kline websocket streams and their faults, on a second port), ``server`` (HTTP and
``BinanceStandIn``). Run it by hand:
``python -m crypto_assets_tests.binance_standin --port 8765 --synthetic-days 3``.
"""

from crypto_assets_tests.binance_standin.data import (
    INTERVAL_MS,
    KLINE_FIELDS,
    Row,
    load_klines_csv,
    shared_data_dir,
    synthetic_klines,
)
from crypto_assets_tests.binance_standin.limits import FAULTS
from crypto_assets_tests.binance_standin.server import BinanceStandIn

__all__ = [
    "FAULTS",
    "INTERVAL_MS",
    "KLINE_FIELDS",
    "BinanceStandIn",
    "Row",
    "load_klines_csv",
    "shared_data_dir",
    "synthetic_klines",
]
