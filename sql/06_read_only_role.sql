-- =============================================================================
-- 06_read_only_role.sql
-- The read-only role the market dashboard (crypto-assets dashboard) and analysts
-- connect with, and the dashboard's own service user.
--
-- Run as : SECURITYADMIN (creates the role and grants privileges) and USERADMIN
--          (creates the user).
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
-- The dashboard logs in as its own user, CRYPTO_DASHBOARD_SVC, granted this
-- role and nothing else (never the pipeline's user: with Snowflake's default
-- secondary roles, ALL, a session keeps every role of its user, INSERT and
-- DELETE included, whatever role it names). DEFAULT_SECONDARY_ROLES = () and
-- the dashboard's USE SECONDARY ROLES NONE at the start of every session keep
-- it to CRYPTO_DASHBOARD. It reads CRYPTO_ASSETS_DASHBOARD_SNOWFLAKE_USER and
-- its key (CRYPTO_ASSETS_DASHBOARD_SNOWFLAKE_PRIVATE_KEY_PATH), the account and
-- warehouse from SNOWFLAKE_ACCOUNT / SNOWFLAKE_WAREHOUSE, and refuses to start
-- with the pipeline's user or role.
--
-- Key-pair authentication (manual step, the key is the deployment's own):
--   ALTER USER CRYPTO_DASHBOARD_SVC SET RSA_PUBLIC_KEY = '<public key body>';
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

USE ROLE USERADMIN;

CREATE USER IF NOT EXISTS CRYPTO_DASHBOARD_SVC
    TYPE = SERVICE
    DEFAULT_ROLE = CRYPTO_DASHBOARD
    DEFAULT_SECONDARY_ROLES = ()
    DEFAULT_WAREHOUSE = CRYPTO_WH
    DEFAULT_NAMESPACE = CRYPTODB.CRYPTOSCHEMA
    COMMENT = 'crypto_assets: market dashboard service user - CRYPTO_DASHBOARD only';

USE ROLE SECURITYADMIN;

GRANT ROLE CRYPTO_DASHBOARD TO USER CRYPTO_DASHBOARD_SVC;
