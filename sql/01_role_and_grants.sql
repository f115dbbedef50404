-- =============================================================================
-- 01_role_and_grants.sql
-- The least-privilege role the Dagster pipeline connects with.
--
-- Run as : SECURITYADMIN (creates roles and manages grants, including the
--          FUTURE grants, which need the MANAGE GRANTS privilege).
-- Needs  : 00_warehouse_database_schema.sql (warehouse, database and schema).
--          Idempotent: CREATE ROLE IF NOT EXISTS, and granting a privilege the
--          role already holds is a no-op.
-- Next   : 02_tables.sql (the FUTURE grants below cover the tables it creates,
--          the ALL TABLES grant covers tables that already exist, so 01 and 02
--          can run in either order).
--
-- What CRYPTO_PIPELINE may do, and why (nothing more - it is NOT ACCOUNTADMIN
-- nor SYSADMIN, owns nothing it did not create, and cannot read S3 itself):
--   * USAGE on CRYPTO_WH / CRYPTODB / CRYPTOSCHEMA - to run queries there.
--   * SELECT, INSERT, DELETE on the schema's tables (existing and future):
--       the IO manager (storage/warehouse_snowflake.py) stages a range's rows,
--       then in one transaction deletes that range by OPEN_TIME and inserts the
--       staged rows; checks and downstream assets read the table back.
--       No UPDATE, TRUNCATE or OWNERSHIP.
--   * CREATE TABLE on the schema - each load creates a TRANSIENT staging table
--       (BTCUSDT_LOAD_xxxxxxxx, CREATE ... LIKE the target) and drops it when
--       the load ends, whether it succeeded or failed.
--   * CREATE STAGE / CREATE FILE FORMAT on the schema - write_pandas uploads
--       the rows to a TEMPORARY stage and reads them through a TEMPORARY file
--       format; both disappear with the session. The IO manager passes
--       auto_create_table=False: the staging table already exists.
-- =============================================================================

USE ROLE SECURITYADMIN;

CREATE ROLE IF NOT EXISTS CRYPTO_PIPELINE
    COMMENT = 'crypto_assets: Dagster SnowflakePandasIOManager - read/write CRYPTODB.CRYPTOSCHEMA tables';

-- Standard role hierarchy: custom roles roll up to SYSADMIN, so SYSADMIN can
-- see and manage whatever the pipeline creates.
GRANT ROLE CRYPTO_PIPELINE TO ROLE SYSADMIN;

GRANT USAGE ON WAREHOUSE CRYPTO_WH TO ROLE CRYPTO_PIPELINE;
GRANT USAGE ON DATABASE CRYPTODB TO ROLE CRYPTO_PIPELINE;
GRANT USAGE ON SCHEMA CRYPTODB.CRYPTOSCHEMA TO ROLE CRYPTO_PIPELINE;

GRANT CREATE TABLE, CREATE STAGE, CREATE FILE FORMAT
    ON SCHEMA CRYPTODB.CRYPTOSCHEMA TO ROLE CRYPTO_PIPELINE;

GRANT SELECT, INSERT, DELETE
    ON ALL TABLES IN SCHEMA CRYPTODB.CRYPTOSCHEMA TO ROLE CRYPTO_PIPELINE;
GRANT SELECT, INSERT, DELETE
    ON FUTURE TABLES IN SCHEMA CRYPTODB.CRYPTOSCHEMA TO ROLE CRYPTO_PIPELINE;

-- -----------------------------------------------------------------------------
-- Service user (manual step, deliberately not executed by this script).
-- Create it once, as USERADMIN or SECURITYADMIN, with key-pair authentication:
-- TYPE = SERVICE users cannot log in with a password or through the browser.
-- Never put a password, private key or AWS key in this repository: Snowflake
-- stores only the public key, and the private key reaches the Dagster
-- deployment as a secret (SNOWFLAKE_PRIVATE_KEY_PATH or SNOWFLAKE_PRIVATE_KEY,
-- with SNOWFLAKE_USER=CRYPTO_PIPELINE_SVC, SNOWFLAKE_ROLE=CRYPTO_PIPELINE,
-- SNOWFLAKE_WAREHOUSE=CRYPTO_WH - see crypto_assets/resources.py).
--
--   CREATE USER IF NOT EXISTS CRYPTO_PIPELINE_SVC
--       TYPE = SERVICE
--       DEFAULT_ROLE = CRYPTO_PIPELINE
--       DEFAULT_WAREHOUSE = CRYPTO_WH
--       DEFAULT_NAMESPACE = CRYPTODB.CRYPTOSCHEMA
--       COMMENT = 'crypto_assets: Dagster pipeline service user';
--   ALTER USER CRYPTO_PIPELINE_SVC SET RSA_PUBLIC_KEY = '<public key body, no PEM header>';
--   GRANT ROLE CRYPTO_PIPELINE TO USER CRYPTO_PIPELINE_SVC;
-- -----------------------------------------------------------------------------
