"""crypto_assets: Binance spot klines -> Parquet zones -> warehouse, as Dagster assets.

The capstone's entry points stay where its users expect them:
``from crypto_assets import get_klines, save_klines_to_csv``.
"""

from crypto_assets.sources.binance_rest import get_klines
from crypto_assets.sources.klines_csv import save_klines_to_csv

__all__ = ["get_klines", "save_klines_to_csv"]
