-- =============================================================================
-- 06_read_only_role.sql
-- The read-only role the market dashboard (crypto-assets dashboard) and analysts
-- connect with.
--
-- Run as : SECURITYADMIN (creates the role and grants privileges).
-- Needs  : 00_warehouse_database_schema.sql, 02_tables.sql (BTCUSDT) and
--          05_analytics_tables.sql (the analytics tables): a GRANT on a table
--          that does not exist fails. Rerun it after adding a table; granting a
--          privilege the role already holds is a no-op.
-- Next   : 90_verify.sql
--
-- What CRYPTO_DASHBOARD may do, and why (nothing more):
--   * USAGE on CRYPTO_WH / CRYPTODB / CRYPTOSCHEMA - to run queries there.
--   * SELECT on BTCUSDT and on each analytics table the page reads, by name:
--       no ALL/FUTURE TABLES grant, so a table added later (or a stage, a
--       pipe, a view) stays invisible until it is granted here on purpose.
--   No INSERT, DELETE, UPDATE, CREATE or OWNERSHIP: the page never writes.
--
-- The dashboard reads the pipeline's SNOWFLAKE_* variables for the account,
-- user, warehouse and key, and connects with the role in
-- CRYPTO_ASSETS_DASHBOARD_ROLE (default CRYPTO_DASHBOARD). Give it its own
-- user with this role only, e.g. (as USERADMIN, key-pair authentication):
--   CREATE USER IF NOT EXISTS CRYPTO_DASHBOARD_SVC TYPE = SERVICE
--       DEFAULT_ROLE = CRYPTO_DASHBOARD DEFAULT_WAREHOUSE = CRYPTO_WH;
--   GRANT ROLE CRYPTO_DASHBOARD TO USER CRYPTO_DASHBOARD_SVC;
-- =============================================================================

USE ROLE SECURITYADMIN;

CREATE ROLE IF NOT EXISTS CRYPTO_DASHBOARD
    COMMENT = 'crypto_assets: market dashboard - SELECT on the candle and analytics tables only';

GRANT ROLE CRYPTO_DASHBOARD TO ROLE SYSADMIN;

GRANT USAGE ON WAREHOUSE CRYPTO_WH TO ROLE CRYPTO_DASHBOARD;
GRANT USAGE ON DATABASE CRYPTODB TO ROLE CRYPTO_DASHBOARD;
GRANT USAGE ON SCHEMA CRYPTODB.CRYPTOSCHEMA TO ROLE CRYPTO_DASHBOARD;

GRANT SELECT ON TABLE CRYPTODB.CRYPTOSCHEMA.BTCUSDT TO ROLE CRYPTO_DASHBOARD;
GRANT SELECT ON TABLE CRYPTODB.CRYPTOSCHEMA.BTCUSDT_1H TO ROLE CRYPTO_DASHBOARD;
GRANT SELECT ON TABLE CRYPTODB.CRYPTOSCHEMA.BTCUSDT_4H TO ROLE CRYPTO_DASHBOARD;
GRANT SELECT ON TABLE CRYPTODB.CRYPTOSCHEMA.BTCUSDT_1D TO ROLE CRYPTO_DASHBOARD;
GRANT SELECT ON TABLE CRYPTODB.CRYPTOSCHEMA.BTCUSDT_INDICATORS_1H TO ROLE CRYPTO_DASHBOARD;
GRANT SELECT ON TABLE CRYPTODB.CRYPTOSCHEMA.BTCUSDT_INDICATORS_1D TO ROLE CRYPTO_DASHBOARD;
GRANT SELECT ON TABLE CRYPTODB.CRYPTOSCHEMA.BTCUSDT_LEVELS TO ROLE CRYPTO_DASHBOARD;
GRANT SELECT ON TABLE CRYPTODB.CRYPTOSCHEMA.BTCUSDT_VOLUME_PROFILE TO ROLE CRYPTO_DASHBOARD;
GRANT SELECT ON TABLE CRYPTODB.CRYPTOSCHEMA.BTCUSDT_BACKTESTS TO ROLE CRYPTO_DASHBOARD;
GRANT SELECT ON TABLE CRYPTODB.CRYPTOSCHEMA.BTCUSDT_BACKTEST_TRADES TO ROLE CRYPTO_DASHBOARD;
GRANT SELECT ON TABLE CRYPTODB.CRYPTOSCHEMA.BTCUSDT_BACKTEST_EQUITY TO ROLE CRYPTO_DASHBOARD;
