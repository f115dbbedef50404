"""crypto_assets: Binance spot klines -> Parquet zones -> warehouse, as Dagster assets."""
