-- =============================================================================
-- 03_storage_integration_and_stage.sql
-- Lets Snowflake read the transformed S3 bucket - without any AWS keys.
--
-- Run as : ACCOUNTADMIN for the storage integration (CREATE INTEGRATION is an
--          account-level privilege) and its USAGE grant; the script then
--          switches to SYSADMIN for the file format and the stage.
-- Needs  : 00_warehouse_database_schema.sql, and on the AWS side an IAM role
--          that can s3:GetObject / s3:GetObjectVersion / s3:ListBucket on
--          s3://<transformed-bucket>/klines/.
--          Replace the placeholders <account-id> and <transformed-bucket>
--          before running. Idempotent: IF NOT EXISTS everywhere.
-- Next   : 04_snowpipe.sql (optional) / 05_analytics_tables.sql
--
-- Credentials: the capstone project this replaces pasted AWS access keys into
-- CREATE STAGE ... CREDENTIALS = (AWS_KEY_ID = ... AWS_SECRET_KEY = ...).
-- Never do that. A storage integration makes Snowflake assume an IAM role;
-- the only secret-like values are the role ARN (not a secret) and an external
-- ID that Snowflake generates.
--
-- One-time trust setup after the first run:
--   1. DESC INTEGRATION S3_TRANSFORMED_INT;  (below) - note
--      STORAGE_AWS_IAM_USER_ARN and STORAGE_AWS_EXTERNAL_ID.
--   2. In AWS, set the role's trust policy: Principal = that IAM user ARN,
--      Condition sts:ExternalId = that external ID.
-- Do NOT "CREATE OR REPLACE" the integration afterwards: replacing it issues a
-- new external ID and silently breaks the trust policy. Use ALTER INTEGRATION
-- to change allowed locations.
-- =============================================================================

USE ROLE ACCOUNTADMIN;

CREATE STORAGE INTEGRATION IF NOT EXISTS S3_TRANSFORMED_INT
    TYPE = EXTERNAL_STAGE
    STORAGE_PROVIDER = 'S3'
    ENABLED = TRUE
    STORAGE_AWS_ROLE_ARN = 'arn:aws:iam::<account-id>:role/crypto-assets-snowflake'
    STORAGE_ALLOWED_LOCATIONS = ('s3://<transformed-bucket>/klines/')
    COMMENT = 'crypto_assets: read-only access to the transformed klines bucket via an assumed IAM role';

-- SYSADMIN creates (and owns) the stage below, so it needs USAGE here.
GRANT USAGE ON INTEGRATION S3_TRANSFORMED_INT TO ROLE SYSADMIN;

-- Values for the IAM role's trust policy (see step 1 above).
DESC INTEGRATION S3_TRANSFORMED_INT;

USE ROLE SYSADMIN;

-- USE_LOGICAL_TYPE = TRUE makes Snowflake honour Parquet logical types, so
-- pyarrow's TIMESTAMP(unit) columns load as timestamps rather than integers.
CREATE FILE FORMAT IF NOT EXISTS CRYPTODB.CRYPTOSCHEMA.PARQUET_FORMAT
    TYPE = PARQUET
    USE_LOGICAL_TYPE = TRUE
    COMMENT = 'crypto_assets: Parquet written by the clean step (pandas/pyarrow)';

-- Keys below the stage look like
--   symbol=BTCUSDT/interval=1m/date=2024-01-01.parquet
CREATE STAGE IF NOT EXISTS CRYPTODB.CRYPTOSCHEMA.S3_TRANSFORMED_STAGE
    URL = 's3://<transformed-bucket>/klines/'
    STORAGE_INTEGRATION = S3_TRANSFORMED_INT
    FILE_FORMAT = (FORMAT_NAME = 'CRYPTODB.CRYPTOSCHEMA.PARQUET_FORMAT')
    COMMENT = 'crypto_assets: transformed klines, Hive-style keys symbol=/interval=/date=.parquet';
