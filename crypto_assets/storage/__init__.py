"""Where asset values live: Parquet zones (local, S3) and the warehouse (DuckDB, Snowflake)."""
