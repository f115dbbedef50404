-- =============================================================================
-- 00_warehouse_database_schema.sql
-- Compute and containers for the crypto_assets pipeline.
--
-- Run as : SYSADMIN (owns the warehouse, database and schema).
-- Needs  : nothing - this is the first script. Idempotent: every statement is
--          CREATE ... IF NOT EXISTS, so re-running it changes nothing. To change
--          a setting later use ALTER (e.g. ALTER WAREHOUSE CRYPTO_WH SET ...).
-- Next   : 01_role_and_grants.sql
-- =============================================================================

USE ROLE SYSADMIN;

-- One XSMALL warehouse is plenty: a day of 1m candles is 1,440 rows. It is
-- created suspended and suspends itself after 60 s idle, so it only burns
-- credits while the pipeline (or someone running 90_verify.sql) is querying.
CREATE WAREHOUSE IF NOT EXISTS CRYPTO_WH
    WITH WAREHOUSE_SIZE = 'XSMALL'
    AUTO_SUSPEND = 60
    AUTO_RESUME = TRUE
    INITIALLY_SUSPENDED = TRUE
    COMMENT = 'crypto_assets: Dagster pipeline loads and ad-hoc checks';

CREATE DATABASE IF NOT EXISTS CRYPTODB
    COMMENT = 'crypto_assets: market data loaded by the Dagster pipeline';

CREATE SCHEMA IF NOT EXISTS CRYPTODB.CRYPTOSCHEMA
    COMMENT = 'crypto_assets: Binance klines (all timestamps UTC)';
