"""The kline lineage: partitions, pure transforms and OHLC rules, and assets and checks on them."""
