-- =============================================================================
-- 05_views.sql
-- Hourly and daily OHLCV candles resampled from the 1m candles in BTCUSDT.
--
-- Run as : SYSADMIN (owns the views).
-- Needs  : 02_tables.sql. Idempotent: CREATE OR REPLACE VIEW is safe (a view
--          holds no data) and COPY GRANTS keeps any privileges granted on it.
-- Next   : 90_verify.sql
--
-- Buckets are UTC hours / UTC days, because OPEN_TIME holds UTC. Only 1m rows
-- are resampled, grouped per SYMBOL. CANDLE_COUNT shows how many 1m candles
-- went into a bucket (60 per full hour, 1,440 per full day), so partial
-- buckets - the current hour/day or a gap in the data - are easy to spot.
--
-- OPEN / CLOSE are the open of the first and the close of the last 1m candle
-- of the bucket, picked with MIN_BY / MAX_BY(value, OPEN_TIME): standard
-- Snowflake aggregate functions (MIN_BY(col_to_return, col_containing_minimum)),
-- which DuckDB (used by the tests via fakesnow) also has (min_by / arg_min).
-- PRICE_DIFF / PRICE_CHANGE repeat the aggregate expressions rather than
-- referring to the HIGH/LOW/OPEN/CLOSE aliases, because in Snowflake a source
-- column with the same name takes precedence over a select-list alias.
-- =============================================================================

USE ROLE SYSADMIN;

CREATE OR REPLACE VIEW CRYPTODB.CRYPTOSCHEMA.BTCUSDT_1H
    COPY GRANTS
    COMMENT = 'BTCUSDT 1h candles resampled from the 1m table; HOUR_START is the UTC hour (TIMESTAMP_NTZ holding UTC)'
AS
SELECT
    DATE_TRUNC('HOUR', OPEN_TIME)                                 AS HOUR_START,
    SYMBOL,
    MIN_BY(OPEN, OPEN_TIME)                                       AS OPEN,
    MAX(HIGH)                                                     AS HIGH,
    MIN(LOW)                                                      AS LOW,
    MAX_BY(CLOSE, OPEN_TIME)                                      AS CLOSE,
    SUM(VOLUME)                                                   AS VOLUME,
    SUM(QUOTE_ASSET_VOLUME)                                       AS QUOTE_ASSET_VOLUME,
    SUM(NUM_TRADES)                                               AS NUM_TRADES,
    SUM(TAKER_BASE_VOL)                                           AS TAKER_BASE_VOL,
    SUM(TAKER_QUOTE_VOL)                                          AS TAKER_QUOTE_VOL,
    MAX(HIGH) - MIN(LOW)                                          AS PRICE_DIFF,
    MAX_BY(CLOSE, OPEN_TIME) - MIN_BY(OPEN, OPEN_TIME)            AS PRICE_CHANGE,
    COUNT(*)                                                      AS CANDLE_COUNT
FROM CRYPTODB.CRYPTOSCHEMA.BTCUSDT
WHERE "INTERVAL" = '1m'
GROUP BY DATE_TRUNC('HOUR', OPEN_TIME), SYMBOL;

-- The capstone's daily columns (open, high, low, close, volume,
-- quote_asset_volume, num_trades, taker_base_vol, taker_quote_vol, price_diff,
-- price_change) plus the day, the symbol and the candle count.
CREATE OR REPLACE VIEW CRYPTODB.CRYPTOSCHEMA.BTCUSDT_1D
    COPY GRANTS
    COMMENT = 'BTCUSDT daily candles resampled from the 1m table; DAY is the UTC calendar day'
AS
SELECT
    TO_DATE(OPEN_TIME)                                            AS DAY,
    SYMBOL,
    MIN_BY(OPEN, OPEN_TIME)                                       AS OPEN,
    MAX(HIGH)                                                     AS HIGH,
    MIN(LOW)                                                      AS LOW,
    MAX_BY(CLOSE, OPEN_TIME)                                      AS CLOSE,
    SUM(VOLUME)                                                   AS VOLUME,
    SUM(QUOTE_ASSET_VOLUME)                                       AS QUOTE_ASSET_VOLUME,
    SUM(NUM_TRADES)                                               AS NUM_TRADES,
    SUM(TAKER_BASE_VOL)                                           AS TAKER_BASE_VOL,
    SUM(TAKER_QUOTE_VOL)                                          AS TAKER_QUOTE_VOL,
    MAX(HIGH) - MIN(LOW)                                          AS PRICE_DIFF,
    MAX_BY(CLOSE, OPEN_TIME) - MIN_BY(OPEN, OPEN_TIME)            AS PRICE_CHANGE,
    COUNT(*)                                                      AS CANDLE_COUNT
FROM CRYPTODB.CRYPTOSCHEMA.BTCUSDT
WHERE "INTERVAL" = '1m'
GROUP BY TO_DATE(OPEN_TIME), SYMBOL;
