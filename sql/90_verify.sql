-- =============================================================================
-- 90_verify.sql
-- Read-only checks after setup and after loads. Safe to run any time.
--
-- Run as : CRYPTO_PIPELINE (proves the pipeline role can see the data) or
--          SYSADMIN; the SHOW GRANTS checks at the end switch to
--          SECURITYADMIN.
-- Needs  : 00 (CRYPTO_WH, auto-resumes), 01 (the role) and 02 (the table).
--          Every query only reads; the warehouse suspends again after 60 s.
-- =============================================================================

USE ROLE CRYPTO_PIPELINE;
USE WAREHOUSE CRYPTO_WH;

-- 1. The capstone's check: every loaded candle.
SELECT * FROM cryptodb.cryptoschema.btcusdt;

-- 2. Candles per UTC day (a full day of 1m candles is 1,440).
SELECT
    TO_DATE(OPEN_TIME) AS DAY,
    COUNT(*)           AS CANDLES
FROM CRYPTODB.CRYPTOSCHEMA.BTCUSDT
GROUP BY TO_DATE(OPEN_TIME)
ORDER BY DAY;

-- 3. Duplicates: an OPEN_TIME seen more than once for the same symbol and
--    interval (e.g. Snowpipe and the IO manager both loading a day). Expect
--    no rows.
SELECT
    SYMBOL,
    "INTERVAL",
    OPEN_TIME,
    COUNT(*) AS COPIES
FROM CRYPTODB.CRYPTOSCHEMA.BTCUSDT
GROUP BY SYMBOL, "INTERVAL", OPEN_TIME
HAVING COUNT(*) > 1
ORDER BY OPEN_TIME;

-- 4. Incomplete days: fewer than 1,440 distinct 1m candles (gaps, a partial
--    load, or today). Expect at most the current UTC day.
SELECT
    TO_DATE(OPEN_TIME)                 AS DAY,
    COUNT(DISTINCT OPEN_TIME)          AS CANDLES,
    1440 - COUNT(DISTINCT OPEN_TIME)   AS MISSING
FROM CRYPTODB.CRYPTOSCHEMA.BTCUSDT
WHERE "INTERVAL" = '1m'
GROUP BY TO_DATE(OPEN_TIME)
HAVING COUNT(DISTINCT OPEN_TIME) < 1440
ORDER BY DAY;

-- 5. Privileges of the pipeline role, current and future. MANAGE GRANTS
--    (SECURITYADMIN) can show them for any role and schema.
USE ROLE SECURITYADMIN;
SHOW GRANTS TO ROLE CRYPTO_PIPELINE;
SHOW FUTURE GRANTS IN SCHEMA CRYPTODB.CRYPTOSCHEMA;
