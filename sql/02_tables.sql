-- =============================================================================
-- 02_tables.sql
-- The table the Dagster SnowflakePandasIOManager writes: one row per 1m candle.
--
-- Run as : SYSADMIN (owns the table; CRYPTO_PIPELINE reads and writes it
--          through the FUTURE TABLES grant from 01_role_and_grants.sql).
-- Needs  : 00_warehouse_database_schema.sql. Idempotent: CREATE TABLE IF NOT
--          EXISTS never touches an existing table or its rows. Never turn this
--          into CREATE OR REPLACE: that drops every loaded candle.
-- Next   : 03_storage_integration_and_stage.sql (only needed for Snowpipe),
--          05_analytics_tables.sql (the analysis layer's tables).
--
-- Column names are the ones write_pandas sends (quote_identifiers=True with
-- UPPERCASE names), so unquoted identifiers here resolve to the same columns.
-- "INTERVAL" is quoted everywhere because INTERVAL is also a SQL keyword.
--
-- Timestamps: OPEN_TIME and CLOSE_TIME are TIMESTAMP_NTZ holding UTC wall-clock
-- time (Binance's epoch milliseconds converted in UTC). Compare them with UTC
-- literals, or CONVERT_TIMEZONE('UTC', ...) - never the session's local time.
--
-- Clustering: deliberately none. Rows arrive one UTC day at a time in time
-- order, so micro-partitions are already naturally ordered by OPEN_TIME and
-- prune well; ~525k rows a year is far below the size where automatic
-- clustering pays for its credits. If the table ever reaches multi-TB size:
--   ALTER TABLE CRYPTODB.CRYPTOSCHEMA.BTCUSDT CLUSTER BY (TO_DATE(OPEN_TIME));
--
-- Snowflake does not enforce PRIMARY KEY/UNIQUE on standard tables, so none is
-- declared; 90_verify.sql checks for duplicate OPEN_TIMEs instead.
-- =============================================================================

USE ROLE SYSADMIN;

CREATE TABLE IF NOT EXISTS CRYPTODB.CRYPTOSCHEMA.BTCUSDT (
    OPEN_TIME          TIMESTAMP_NTZ COMMENT 'Candle open time, UTC (TIMESTAMP_NTZ holding UTC)' NOT NULL,
    SYMBOL             VARCHAR       COMMENT 'Binance symbol, e.g. BTCUSDT' NOT NULL,
    "INTERVAL"         VARCHAR       COMMENT 'Binance kline interval, e.g. 1m' NOT NULL,
    OPEN               FLOAT                  COMMENT 'Open price (USDT)',
    HIGH               FLOAT                  COMMENT 'High price (USDT)',
    LOW                FLOAT                  COMMENT 'Low price (USDT)',
    CLOSE              FLOAT                  COMMENT 'Close price (USDT)',
    VOLUME             FLOAT                  COMMENT 'Base asset volume (BTC)',
    CLOSE_TIME         TIMESTAMP_NTZ          COMMENT 'Candle close time, UTC (TIMESTAMP_NTZ holding UTC)',
    QUOTE_ASSET_VOLUME FLOAT                  COMMENT 'Quote asset volume (USDT)',
    NUM_TRADES         NUMBER(38, 0)          COMMENT 'Number of trades in the candle',
    TAKER_BASE_VOL     FLOAT                  COMMENT 'Taker buy base asset volume (BTC)',
    TAKER_QUOTE_VOL    FLOAT                  COMMENT 'Taker buy quote asset volume (USDT)',
    PRICE_DIFF         FLOAT                  COMMENT 'HIGH - LOW',
    PRICE_CHANGE       FLOAT                  COMMENT 'CLOSE - OPEN',
    CANDLE_RETURN      FLOAT                  COMMENT 'CLOSE / OPEN - 1',
    TYPICAL_PRICE      FLOAT                  COMMENT '(HIGH + LOW + CLOSE) / 3',
    VWAP               FLOAT                  COMMENT 'QUOTE_ASSET_VOLUME / VOLUME; NULL when VOLUME = 0',
    TAKER_BUY_RATIO    FLOAT                  COMMENT 'TAKER_BASE_VOL / VOLUME; NULL when VOLUME = 0'
)
COMMENT = 'Binance BTC/USDT 1m klines, one row per candle. All timestamps are UTC (TIMESTAMP_NTZ holding UTC). Written by the Dagster SnowflakePandasIOManager: re-materializing a day deletes the rows of that day by OPEN_TIME range and inserts them again.';
